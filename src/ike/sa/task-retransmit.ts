// The one request in flight (window size 1, RFC 7296 §2.3): sent, retransmitted with exponential
// backoff (charon: 4 s × 1.8^n, 5 retransmits) until its answer comes, and when none does, the IKE
// SA ends (§2.4) and what follows it: dpd.action, or a retry of a failed initiation. Starting an
// initiator is here because it is both the first request armed and what a restart runs again.
import { ExchangeType } from '../constants.js';
import { preferredDhGroup } from '../policy/convert.js';
import { startInit } from '../exchanges/ike-init.js';
import type { DownReason } from '../ports.js';
import { ikeFailure } from './context.js';
import type { EngineHost } from './host.js';
import { FRAGMENT_MTU } from './defaults.js';
import type { IkeSa, Outstanding, PeerRuntime } from './ike-sa.js';
import { teardown } from './lifecycle.js';
import { unfragmentedHint } from './wire.js';

export function mtuOf(sa: IkeSa): number { return sa.peer.config.fragmentMtu ?? FRAGMENT_MTU; }

export function newSa(e: EngineHost, peer: PeerRuntime, role: 'initiator' | 'responder', spiI: bigint, local = peer.local, remote = peer.remote): IkeSa {
  const now = e.clock.now();
  return {
    serial: e.newSerial(), peer, role, spiI, spiR: 0n, state: { tag: role === 'initiator' ? 'auth-sent' : 'init-done' }, keys: null,
    local, remote, natLocal: false, natRemote: false, fragmentation: false, peerHashes: null, initRequest: null, initResponse: null, intermediate: null,
    ni: new Uint8Array(0), nr: new Uint8Array(0), selected: null, remoteId: null, nextRequestId: 0, outstanding: null, pending: [],
    expectedRequestId: 0, lastResponse: null, fragments: null, children: new Map(), lingering: new Map(), reauth: null, ikeCollision: null, createdAtMs: now,
    establishedAtMs: null, upSerial: null, rekeyAtMs: null, resumedAtMs: null, lastInboundMs: now, timers: { rekey: null, dpd: null, halfOpen: null, rekeyed: null }, queue: Promise.resolve(),
  };
}

/** Create an initiator IKE SA for `peer` and send IKE_SA_INIT. */
export function startInitiator(e: EngineHost, peer: PeerRuntime, prepare?: (sa: IkeSa) => void): IkeSa {
  const sa = newSa(e, peer, 'initiator', e.newIkeSpi());
  prepare?.(sa);
  e.register(sa);
  void e.enqueue(sa, () => {
    const group = preferredDhGroup(peer.ikeProposals)!;
    const d = startInit(e, sa, group, null, 0);
    arm(e, sa, { task: { kind: 'ike-init' }, messageId: 0, exchangeType: ExchangeType.IKE_SA_INIT, datagrams: [d], tries: 0, timer: null });
  });
  return sa;
}

/** Send (or resend) the outstanding request and schedule its retransmission. */
export function arm(e: EngineHost, sa: IkeSa, o: Outstanding): void {
  sa.outstanding = o;
  o.firstSentMs ??= e.clock.now();
  e.persistPeer(sa.peer.config.name);
  for (const d of o.datagrams) e.ports.transport.send(d, sa.remote, sa.local);
  let wait = e.options.retransmitTimeoutMs * Math.pow(e.options.retransmitBase, o.tries);
  // dpd.timeout bounds a liveness check's total wait, whatever the retransmission schedule says.
  const dpdTimeout = o.task.kind === 'dpd' ? sa.peer.config.dpd.timeoutMs : undefined;
  const deadline = dpdTimeout === undefined ? Infinity : o.firstSentMs + dpdTimeout;
  wait = Math.max(0, Math.min(wait, deadline - e.clock.now()));
  o.timer = e.clock.setTimer(wait, () => {
    void e.enqueue(sa, async () => {
      if (sa.outstanding !== o) return;
      if (o.tries >= e.options.retransmitTries || e.clock.now() >= deadline) { await timedOut(e, sa, o); return; }
      o.tries++;
      arm(e, sa, o);
    });
  });
}

/** Retire an IKE SA whose children moved to a successor: no events, no kernel changes. */
export function retire(e: EngineHost, sa: IkeSa): void {
  for (const t of Object.values(sa.timers)) t?.cancel();
  sa.outstanding?.timer?.cancel();
  sa.outstanding = null;
  sa.pending.length = 0;
  sa.state = { tag: 'dead' };
  e.unregister(sa);
}

async function timedOut(e: EngineHost, sa: IkeSa, o: Outstanding): Promise<void> {
  sa.outstanding = null;
  const task = o.task;
  if (task.kind === 'ike-delete' && task.reason === 'duplicate') { await teardown(e, sa, 'replaced'); return; }
  if (task.kind === 'ike-delete' && task.reason === 'reauthenticated') { await teardown(e, sa, 'reauthenticated'); return; }
  if (task.kind === 'ike-delete' && task.reason !== 'terminated') { retire(e, sa); return; }
  if (sa.state.tag === 'rekeyed') { retire(e, sa); return; }
  const wasEstablished = sa.state.tag === 'established' || sa.state.tag === 'deleting';
  const reason: DownReason = task.kind === 'ike-delete' ? 'terminated' : task.kind === 'dpd' ? 'dpd-timeout' : 'retransmit-limit';
  if (task.kind !== 'ike-delete')
    e.failure(sa.peer, ikeFailure({ code: 'ERR_IKE_TIMEOUT', message: `no response after ${o.tries} retransmissions (${task.kind})${unfragmentedHint(sa, o.exchangeType, o.datagrams, mtuOf(sa))}`, exchange: exchangeOf(o.exchangeType) }));
  await teardown(e, sa, reason);
  afterDown(e, sa.peer, reason, wasEstablished);
}

/** What follows an IKE SA that died without being asked to (dpd.action, RFC 3706-style). */
export function afterDown(e: EngineHost, peer: PeerRuntime, reason: DownReason, wasEstablished: boolean): void {
  if (peer.terminated) return;
  if (!wasEstablished) { scheduleRetry(e, peer); return; }
  if (reason !== 'dpd-timeout' && reason !== 'retransmit-limit') return;
  const action = peer.config.dpd.action;
  if (action === 'restart' && e.liveSas(peer.config.name).length === 0) startInitiator(e, peer);
  else if (action === 'hold') e.installTraps(peer);
}

/** A connection we initiated failed before it was up: try again later (startAction initiate only). */
export function scheduleRetry(e: EngineHost, peer: PeerRuntime): void {
  if (peer.terminated || peer.config.startAction !== 'initiate' || e.options.retryIntervalMs <= 0) return;
  peer.retryTimer?.cancel();
  peer.retryTimer = e.clock.setTimer(e.options.retryIntervalMs, () => {
    peer.retryTimer = null;
    if (!peer.terminated && e.peers.get(peer.config.name) === peer && e.liveSas(peer.config.name).length === 0) startInitiator(e, peer);
  });
}

function exchangeOf(t: number): 'IKE_SA_INIT' | 'IKE_INTERMEDIATE' | 'IKE_FOLLOWUP_KE' | 'IKE_AUTH' | 'CREATE_CHILD_SA' | 'INFORMATIONAL' | null {
  return t === ExchangeType.IKE_SA_INIT ? 'IKE_SA_INIT' : t === ExchangeType.IKE_INTERMEDIATE ? 'IKE_INTERMEDIATE' : t === ExchangeType.IKE_FOLLOWUP_KE ? 'IKE_FOLLOWUP_KE' : t === ExchangeType.IKE_AUTH ? 'IKE_AUTH' : t === ExchangeType.CREATE_CHILD_SA ? 'CREATE_CHILD_SA' : t === ExchangeType.INFORMATIONAL ? 'INFORMATIONAL' : null;
}
