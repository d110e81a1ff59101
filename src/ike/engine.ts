// The IKEv2 engine facade: what the agent daemon (src/agent) and the CLI's standalone mode call.
// No sockets, no Kubernetes, no timers of its own: everything external comes through EnginePorts
// (ports.ts). One engine serves many peers; each peer config yields at most one live IKE SA (plus
// a transient second one during an IKE rekey) and its Child SAs.
//
// Lifecycle, as the daemon drives it:
//   const engine = new IkeEngine(ports, peers, options);
//   engine.start();                          // startAction initiate → initiate; on-demand → traps
//   socket.on('message', (d, rinfo) => void engine.receive(d, from, to));
//   xfrm.on('acquire', (a) => engine.acquire(a.reqid));
//   xfrm.on('expire', (e) => engine.expired(e.spi, e.hard));
//   xfrm.on('mapping', (m) => engine.natMapping(m.spi, { address: m.newSrc, port: m.newSport }));
//   engine.rekey(name, { ike: true });       // `kipsec rekey NAME --ike`: rekey now, as the timers would
//   engine.status();                         // for IPsecNode/IPsecTunnel status and `kipsec status`
//   await engine.close();                    // deletes nothing in the kernel: a restart adopts
//
// Every method is safe to call with any input: network bytes never make `receive` throw or reject
// (bad input is dropped and counted in status().drops, or answered with a notify).
import type { KipsecError } from '../common/errors.js';
import type { SecretBytes } from '../common/secret.js';
import type { EnginePorts, Endpoint } from './ports.js';
import type { EngineOptions, PeerConfig } from './sa/config.js';
import { EngineCore } from './sa/core.js';
import type { RestoreResult } from './sa/restore.js';
import type { AdoptedChildSa, EngineSizes, EngineStatus, RekeyRequest, RekeyStarted } from './types.js';

export type { EngineOptions, PeerConfig, ChildConfig, PeerAuth, PeerPins, IkeIdentity, DpdConfig } from './sa/config.js';
export type { RestoreResult } from './sa/restore.js';
export type { IkeSaStateName, ChildSaStateName, ChildSaStatus, IkeSaStatus, PeerStatus, EngineStatus, EngineSizes, AdoptedChildSa, RekeyRequest, RekeyStarted } from './types.js';

export class IkeEngine {
  readonly #core: EngineCore;

  /** Validates every peer config (ConfigError naming the field on failure). */
  constructor(ports: EnginePorts, peers: readonly PeerConfig[], options: EngineOptions = {}) {
    this.#core = new EngineCore(ports, options);
    for (const p of peers) this.#core.addPeer(p);
  }

  /** Act on each peer's startAction: initiate, install on-demand traps, or just listen. */
  start(): void { this.#core.start(); }

  /**
   * Add or replace a peer config; ConfigError (naming the field) on a bad one. Replacing keeps the
   * peer's SAs up: they follow the new settings from their next rekey on (reqids are kept per
   * child name). Call terminate() + initiate() to apply a change at once.
   */
  addPeer(peer: PeerConfig): void { this.#core.addPeer(peer); }

  /**
   * Remove a peer: terminate() (Delete to the peer, children and adopted SAs out), traps removed.
   * `keepHalfOpen` (a config about to be replaced by addPeer under the same name): IKE SAs the peer
   * started and we answered, awaiting IKE_AUTH, stay and continue under the new config; IKE_SA_INIT
   * carries no traffic selectors, so nothing they agreed depends on the old one.
   */
  removePeer(name: string, o?: { readonly keepHalfOpen?: boolean }): Promise<void> { return this.#core.removePeer(name, o); }

  /** Start (or restart) the IKE SA and all Child SAs of a peer. Idempotent while connecting/up. */
  initiate(name: string): void { this.#core.initiate(name); }

  /**
   * Delete the peer's IKE SA and children (INFORMATIONAL Delete), and keep them down (no DPD
   * restart). Resolves once the Delete is sent (or the SA torn down if it was not up); the
   * `ike-down` event with reason `terminated` marks completion (after the peer's answer, or
   * after the retransmission limit).
   */
  terminate(name: string): Promise<void> { return this.#core.terminate(name); }

  /**
   * One IKE message (non-ESP marker already stripped) from `from` to our `to`. Resolves when it
   * has been processed (including kernel installs); never rejects.
   */
  receive(datagram: Uint8Array, from: Endpoint, to: Endpoint): Promise<void> { return this.#core.receive(datagram, from, to); }

  /**
   * Rekey now what the timers rekey later (operator command, like strongSwan's `swanctl --rekey`):
   * queues `ike-rekey` (RFC 7296 §1.3.2, §2.18) and/or `child-rekey` for every installed Child SA
   * (§1.3.3, with PFS when the ESP proposals carry a KE method) on the peer's established IKE SA.
   * With both, the IKE SA goes first and the Child SA rekeys run on its successor. Returns what
   * was queued; `ike-rekeyed` / `child-rekeyed` (or `error`) events report the outcome.
   *
   * With `reauth` (make-before-break reauthentication, RFC 7296 §2.8.3; strongSwan's
   * `make_before_break = yes`): a new IKE SA is negotiated (IKE_SA_INIT, IKE_AUTH with the current
   * credentials and no INITIAL_CONTACT, CREATE_CHILD_SA for every further child config) while the
   * old one stays up; once every child config has been tried on it, the old IKE SA is deleted
   * with an INFORMATIONAL Delete. New Child SAs share the old ones' reqids and policies; the old
   * inbound SAs linger rekeyDeleteDelayMs. Events: `ike-up` and `child-up` for the new SAs,
   * `child-down` and `ike-down` with reason `reauthenticated` for the old ones. If the new IKE SA
   * fails, it goes down (`error`, `ike-down` negotiation-failed or retransmit-limit) and the old
   * one stays as it was. The peer's side keeps both until the Delete (no INITIAL_CONTACT, §2.4).
   *
   * Throws KipsecError: ERR_CONFIG (unknown peer), ERR_IKE_NOT_ESTABLISHED (no IKE SA up),
   * ERR_IKE_NO_CHILD_SA (a child rekey asked for, none installed), ERR_IKE_REKEY_IN_PROGRESS
   * (every installed Child SA is already being rekeyed; for `reauth`: a reauthentication or
   * another IKE SA with the peer is already being negotiated).
   */
  rekey(name: string, what: RekeyRequest = {}): RekeyStarted { return this.#core.rekey(name, what); }

  /** Kernel acquire for a trap policy (on-demand): negotiate the peer owning `reqid`. */
  acquire(reqid: number): void { this.#core.acquire(reqid); }

  /** Kernel soft (rekey) or hard (gone) expire for the inbound SA with this SPI. */
  expired(inboundSpi: number, hard: boolean): void { this.#core.expired(inboundSpi, hard); }

  /**
   * The kernel decapsulated an authenticated ESP-in-UDP packet for the inbound SA `inboundSpi`
   * from `from`, which is not where the SA's encapsulation points (XFRM_MSG_MAPPING). RFC 7296
   * §2.23: a validated packet from a new address/port means the peer's NAT mapping changed, and
   * the side facing that NAT follows it. When the peer is behind a NAT (NAT_DETECTION), its IKE SA
   * and Child SAs move there now, without waiting for the peer's next IKE request (a peer with no
   * DPD may send none for an hour). Otherwise counted as a drop and ignored.
   */
  natMapping(inboundSpi: number, from: Endpoint): void { this.#core.natMapping(inboundSpi, from); }

  /**
   * Resume IKE SAs a previous process checkpointed (EnginePorts.checkpoints; src/ike/sa/checkpoint.ts)
   * before start(): the same SPIs, keys and message IDs, their Child SAs taken over from the kernel
   * (KernelIpsec.restoreChildSa). A checkpoint that does not decode, or no longer fits the peer
   * configs, is refused with the reason and removed from the store; hand the Child SAs no resumed
   * SA took over to adopt(). Never throws for bad checkpoint data.
   */
  restore(checkpoints: readonly { readonly id: string; readonly data: SecretBytes }[]): Promise<readonly RestoreResult[]> { return this.#core.restore(checkpoints); }

  /** Keep Child SAs installed by a previous process; see AdoptedChildSa. Then initiate/respond as usual. */
  adopt(peer: string, children: readonly AdoptedChildSa[]): void { this.#core.adopt(peer, children); }

  /** A snapshot; contains no key material. */
  status(): EngineStatus { return this.#core.status(); }

  /** Counts of what the engine holds (see EngineSizes); O(IKE SAs). */
  sizes(): EngineSizes { return this.#core.sizes(); }

  /** Resolves once no receive, timer callback or kernel call is in progress (tests, shutdown). */
  idle(): Promise<void> { return this.#core.idle(); }

  /** Stop timers and pending work. Leaves kernel state and sends nothing (restart-safe). */
  close(): Promise<void> { return this.#core.close(); }
}

/** Errors thrown by facade methods (never by receive): config problems and unknown peer names. */
export type EngineError = KipsecError;
