// What the agent remembers about its peers between engine snapshots — the last error with its
// IKE notify, the last rekey, handshake latencies — fed by the engine's events (logged here, once),
// and the per-peer status built from an engine snapshot plus the kernel's counters. `kipsec status`,
// the IPsecNode status and the metrics all read it.
import type { ChildSaStatus, PeerStatus } from '../ike/engine.js';
import type { IkeEvent, IkeFailure } from '../ike/ports.js';
import type { ChildSaCounters } from '../ike/ports.js';
import { hex } from './kernel.js';
import type { Logger } from './log.js';
import type { DesiredPeer } from './source.js';
import type { ChildStatus, LastError, SaStateName, TunnelStatus } from './status.js';

const IKE_STATE: Readonly<Record<string, SaStateName>> = { idle: 'none', connecting: 'connecting', established: 'established', rekeying: 'rekeying', deleting: 'deleting', down: 'none' };

const iso = (ms: number | null | undefined): string | undefined => (ms === null || ms === undefined || ms <= 0 ? undefined : new Date(ms).toISOString());

export function lastErrorOf(f: IkeFailure, time: string, p: Pick<DesiredPeer, 'ikeProposalText' | 'espProposalText'> | undefined): LastError {
  const local = f.proposals?.local ?? (f.notify === 'NO_PROPOSAL_CHOSEN' && p ? (f.exchange === 'IKE_SA_INIT' ? p.ikeProposalText : p.espProposalText) : undefined);
  return {
    message: f.message, time,
    ...(f.notify ? { notify: f.notify } : {}),
    ...(local ? { localProposals: local } : {}),
    ...(f.proposals?.remote ? { remoteProposals: f.proposals.remote } : f.notify === 'NO_PROPOSAL_CHOSEN' ? { remoteProposals: [] } : {}),
  };
}

/** Hooks the metrics use; all optional. */
export interface EventObserver {
  ikeUp?(peer: string, handshakeMs: number | undefined): void;
  rekeyed?(peer: string, what: 'ike' | 'child'): void;
  failure?(peer: string, f: IkeFailure): void;
  down?(peer: string, what: 'ike' | 'child', reason: string): void;
}

export class StatusBook {
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #lastError = new Map<string, LastError>();
  readonly #lastRekey = new Map<string, string>();
  readonly #observers: EventObserver[] = [];
  readonly #peerOf: (name: string) => DesiredPeer | undefined;

  constructor(o: { log: Logger; now: () => number; peerOf: (name: string) => DesiredPeer | undefined }) {
    this.#log = o.log; this.#now = o.now; this.#peerOf = o.peerOf;
  }

  observe(o: EventObserver): void { this.#observers.push(o); }

  lastRekey(peer: string): string | undefined { return this.#lastRekey.get(peer); }

  /** A peer that left: forget what we knew about it. */
  forget(peer: string): void { this.#lastError.delete(peer); this.#lastRekey.delete(peer); }

  /** The engine's event sink: one log line per event, bookkeeping, observers. Never throws. */
  onEvent(e: IkeEvent): void {
    // The time only for the records that keep it (rekeys, errors): not per handshake.
    const at = (): string => new Date(this.#now()).toISOString();
    const log = this.#log;
    const each = (f: (o: EventObserver) => void): void => { for (const o of this.#observers) { try { f(o); } catch { /* observers must not break the engine */ } } };
    switch (e.type) {
      case 'ike-up':
        log.info({ tunnel: e.peer, ikeSpis: e.ikeSpis, suite: e.suite, remote: `${e.remote.address}:${e.remote.port}`, nat: e.natDetected, ...('handshakeMs' in e ? { handshakeMs: e.handshakeMs } : {}) }, 'IKE SA established');
        this.#lastError.delete(e.peer);
        each((o) => o.ikeUp?.(e.peer, 'handshakeMs' in e && typeof e.handshakeMs === 'number' ? e.handshakeMs : undefined));
        break;
      case 'ike-rekeyed':
        log.info({ tunnel: e.peer, old: e.oldIkeSpis, ikeSpis: e.ikeSpis, suite: e.suite }, 'IKE SA rekeyed');
        this.#lastRekey.set(e.peer, at());
        each((o) => o.rekeyed?.(e.peer, 'ike'));
        break;
      case 'ike-down':
        log.info({ tunnel: e.peer, ikeSpis: e.ikeSpis, reason: e.reason }, 'IKE SA down');
        each((o) => o.down?.(e.peer, 'ike', e.reason));
        break;
      case 'child-up':
        log.info({ tunnel: e.peer, child: e.child, suite: e.suite, spiIn: hex(e.ref.inboundSpi), spiOut: hex(e.ref.outboundSpi), localTs: e.localTs, remoteTs: e.remoteTs }, 'child SA up');
        break;
      case 'child-rekeyed':
        log.info({ tunnel: e.peer, child: e.child, suite: e.suite, oldSpiIn: hex(e.old.inboundSpi), spiIn: hex(e.ref.inboundSpi), spiOut: hex(e.ref.outboundSpi) }, 'child SA rekeyed');
        this.#lastRekey.set(e.peer, at());
        each((o) => o.rekeyed?.(e.peer, 'child'));
        break;
      case 'child-down':
        log.info({ tunnel: e.peer, child: e.child, spiIn: hex(e.ref.inboundSpi), reason: e.reason }, 'child SA down');
        each((o) => o.down?.(e.peer, 'child', e.reason));
        break;
      case 'error':
        log.warn({ tunnel: e.peer, code: e.error.code, notify: e.error.notify, origin: e.error.origin, exchange: e.error.exchange, proposals: e.error.proposals }, e.error.message);
        this.#lastError.set(e.peer, lastErrorOf(e.error, at(), this.#peerOf(e.peer)));
        each((o) => o.failure?.(e.peer, e.error));
        break;
    }
  }

  /** One peer's status from the engine's snapshot and the kernel's counters of its Child SAs. */
  async peerStatus(p: DesiredPeer, s: PeerStatus | undefined, counters: (c: ChildSaStatus) => Promise<ChildSaCounters | undefined>): Promise<TunnelStatus> {
    const ike = s?.ike ?? null;
    const children: ChildStatus[] = [];
    for (const c of [...(ike?.children ?? []), ...(s?.adoptedChildren ?? [])]) children.push(childStatus(c, await counters(c)));
    const engineErr = s?.lastError ? lastErrorOf(s.lastError, new Date(s.lastError.atMs).toISOString(), p) : undefined;
    const lastError = this.#lastError.get(p.name) ?? engineErr;
    let state: SaStateName = ike ? (IKE_STATE[ike.state] ?? 'none') : 'none';
    if (state === 'none' && lastError) state = 'failed';
    const spis = ike ? /^([0-9a-f]+)_i\s+([0-9a-f]+)_r$/.exec(ike.ikeSpis) : null;
    const lastRekeyAt = this.#lastRekey.get(p.name);
    return {
      name: p.name, local: p.config.local.address, remote: p.config.remote.address, startAction: p.config.startAction, ikeState: state,
      ...(p.kind.type === 'mesh' ? { node: p.kind.node } : {}),
      ...(ike?.suite ? { ikeSuite: ike.suite } : {}),
      ...(spis ? { ikeSpis: { initiator: spis[1]!, responder: spis[2]! } } : {}),
      ...(ike ? { role: ike.role, natDetected: ike.natDetected.local || ike.natDetected.remote, remotePort: ike.remote.port } : {}),
      ...(iso(ike?.establishedAtMs) ? { establishedAt: iso(ike?.establishedAtMs)! } : {}),
      ...(iso(ike?.resumedAtMs) ? { resumedAt: iso(ike?.resumedAtMs)! } : {}),
      ...(iso(ike?.rekeyAtMs) ? { nextRekeyAt: iso(ike?.rekeyAtMs)! } : {}),
      ...(lastRekeyAt ? { lastRekeyAt } : {}),
      children, expectedChildren: p.config.children.map((c) => c.name),
      ...(lastError ? { lastError } : {}),
    };
  }
}

function childStatus(c: ChildSaStatus, cnt: ChildSaCounters | undefined): ChildStatus {
  return {
    name: c.name, state: c.adopted ? 'adopted' : c.state === 'rekeying' ? 'rekeying' : 'installed', suite: c.suite, mode: c.mode,
    spiIn: hex(c.ref.inboundSpi), spiOut: hex(c.ref.outboundSpi), localTs: c.localTs, remoteTs: c.remoteTs,
    bytesIn: Number(cnt?.inboundBytes ?? 0n), bytesOut: Number(cnt?.outboundBytes ?? 0n), packetsIn: Number(cnt?.inboundPackets ?? 0n), packetsOut: Number(cnt?.outboundPackets ?? 0n),
    encap: c.encap,
    ...(iso(c.installedAtMs) ? { installedAt: iso(c.installedAtMs)! } : {}),
    ...(!c.adopted && iso(c.rekeyAtMs) ? { nextRekeyAt: iso(c.rekeyAtMs)! } : {}),
  };
}
