// The engine surface the agent drives: IkeEngine (src/ike/engine.ts), or a recording fake in unit tests.
import type { IkeEngine } from '../ike/engine.js';

export type EngineLike = Pick<IkeEngine, 'start' | 'addPeer' | 'removePeer' | 'initiate' | 'terminate' | 'rekey' | 'receive' | 'acquire' | 'expired' | 'natMapping' | 'adopt' | 'restore' | 'status' | 'close'>;
