// Engine core (placeholder while the exchanges land): owns peers, IKE SAs and dispatch.
import { KipsecError } from '../../common/errors.js';
import type { AdoptedChildSa, EngineStatus } from '../engine.js';
import type { Endpoint, EnginePorts } from '../ports.js';
import type { EngineOptions, PeerConfig } from './config.js';

export class EngineCore {
  readonly #ports: EnginePorts;
  readonly #options: EngineOptions;
  readonly #peers = new Map<string, PeerConfig>();
  constructor(ports: EnginePorts, options: EngineOptions) { this.#ports = ports; this.#options = options; }
  start(): void { void this.#ports; void this.#options; }
  addPeer(peer: PeerConfig): void { this.#peers.set(peer.name, peer); }
  removePeer(name: string): Promise<void> { this.#peers.delete(name); return Promise.resolve(); }
  initiate(name: string): void { throw new KipsecError('ERR_IKE_NOT_IMPLEMENTED', `initiate ${name}`); }
  terminate(name: string): Promise<void> { return Promise.reject(new KipsecError('ERR_IKE_NOT_IMPLEMENTED', `terminate ${name}`)); }
  receive(datagram: Uint8Array, from: Endpoint, to: Endpoint): Promise<void> { void datagram; void from; void to; return Promise.resolve(); }
  acquire(reqid: number): void { void reqid; }
  expired(spi: number, hard: boolean): void { void spi; void hard; }
  adopt(peer: string, children: readonly AdoptedChildSa[]): void { void peer; void children; }
  status(): EngineStatus { return { peers: [], halfOpen: 0, cookiesActive: false, drops: {} }; }
  close(): Promise<void> { return Promise.resolve(); }
}
