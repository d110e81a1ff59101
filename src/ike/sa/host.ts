// What the driver modules (tasks, responder, lifecycle, reauth, child-tasks, restore) need from the
// engine core: its SA table, queues and bookkeeping. EngineCore implements it; the modules name
// this interface rather than the class, so none of them imports core.ts, which imports them all.
import type { Endpoint, EnginePorts, IkeFailure } from '../ports.js';
import type { AdoptedChildSa } from '../types.js';
import type { CookieJar } from '../exchanges/cookie.js';
import type { Ctx } from './context.js';
import type { ChildSa, IkeSa, PeerRuntime, Task } from './ike-sa.js';
import type { EngineLimits } from './limits.js';

export interface EngineHost extends Ctx {
  readonly ports: EnginePorts;
  readonly peers: Map<string, PeerRuntime>;
  /** Every IKE SA by the SPI we chose for it. */
  readonly sas: Map<bigint, IkeSa>;
  /** Responder SAs by initiator address + SPIi, to answer retransmitted IKE_SA_INIT (add with indexInit). */
  readonly initIndex: ReadonlyMap<string, IkeSa>;
  indexInit(key: string, sa: IkeSa): void;
  readonly cookies: CookieJar;
  readonly lastErrors: Map<string, IkeFailure & { atMs: number }>;
  readonly adopted: Map<string, AdoptedChildSa[]>;
  halfOpen: number;
  /** close() was called: work that awaited something (a crypto worker) must not start new state. */
  readonly closed: boolean;
  readonly limits: EngineLimits;
  /** Count a dropped datagram (or failed chore) under `reason` in status().drops. */
  drop(reason: string): void;
  /** Keep a promise for idle(); never let it reject unobserved. */
  track(p: Promise<void>): Promise<void>;
  /** Run `fn` after everything already queued for `sa`. */
  enqueue(sa: IkeSa, fn: () => Promise<void> | void): Promise<void>;
  queueTask(sa: IkeSa, task: Task): void;
  ownerOf(child: ChildSa): IkeSa | undefined;
  /** Peers an incoming IKE_SA_INIT to `to` from `from` may belong to (address match, %any last). */
  candidates(from: Endpoint, to: Endpoint): PeerRuntime[];
  liveSas(peer: string): IkeSa[];
  installTraps(p: PeerRuntime): void;
  /** Save `sa`'s checkpoint if it changed; before its datagrams leave. */
  persist(sa: IkeSa): void;
  /** persist() every SA of the peer: an exchange can change two of them (IKE rekey). */
  persistPeer(peer: string): void;
  /** The responder switched `sa` to another peer config after IKE_AUTH identified the peer. */
  rehome(sa: IkeSa, previousPeer: string): void;
  unregister(sa: IkeSa): void;
}
