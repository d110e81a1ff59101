// The one request in flight (window size 1, RFC 7296 §2.3): sent, retransmitted with exponential
// backoff (charon: 4 s × 1.8^n, 5 retransmits) until its answer comes, and when none does, the IKE
// SA ends (§2.4) and what follows it: dpd.action, or a retry of a failed initiation. The steps of
// our INFORMATIONAL requests and of a request left unanswered (steps/informational.ts) decide that;
// their effects are carried out here. Starting an initiator is here because it is both the first
// request armed and what a restart runs again.
import { ExchangeType } from '../constants.js';
import type { IkePayload } from '../codec/payload.js';
import { requestInit, type InitSent, type InitStep } from '../steps/ike-init.js';
import { ikeDeleteUnanswered, livenessUnanswered, requestUnanswered, type RequestStep } from '../steps/informational.js';
import type { EngineHost } from './host.js';
import { FRAGMENT_MTU } from './defaults.js';
import { deadState, NO_SCRATCH, type IkeSa, type Outstanding, type PeerRuntime } from './ike-sa.js';
import { teardown } from './lifecycle.js';
import { unfragmentedHint } from './wire.js';

export function mtuOf(sa: IkeSa): number { return sa.peer.config.fragmentMtu ?? FRAGMENT_MTU; }

export function newSa(e: EngineHost, peer: PeerRuntime, role: 'initiator' | 'responder', spiI: bigint, local = peer.local, remote = peer.remote): IkeSa {
  const now = e.clock.now();
  return {
    serial: e.newSerial(), peer, role, spiI, spiR: 0n, state: { tag: 'idle' },
    local, remote, natLocal: false, natRemote: false, fragmentation: false, peerHashes: null,
    nextRequestId: 0, outstanding: null, pending: [],
    expectedRequestId: 0, lastResponse: null, fragments: null, children: new Map(), lingering: null, reauth: null, followup: null, createdAtMs: now,
    lastInboundMs: now, timers: { rekey: null, dpd: null, halfOpen: null, rekeyed: null }, queue: Promise.resolve(),
  };
}

/** Create an initiator IKE SA for `peer` and send IKE_SA_INIT. */
export function startInitiator(e: EngineHost, peer: PeerRuntime, prepare?: (sa: IkeSa) => void): IkeSa {
  const sa = newSa(e, peer, 'initiator', e.newIkeSpi());
  prepare?.(sa);
  e.register(sa);
  void e.enqueue(sa, () => {
    sendInit(e, sa, requestInit(e.random, sa, { group: peer.ikeGroup, cookie: null, retries: 0 }));
  });
  return sa;
}

/** Send IKE_SA_INIT as steps/ike-init.ts built it (the first, or a repeat with a cookie or another group), armed for retransmission. */
export function sendInit(e: EngineHost, sa: IkeSa, step: InitStep<InitSent>): void {
  sa.state = step.next;
  for (const f of step.effects) if (f.kind === 'send') arm(e, sa, { task: { kind: 'ike-init' }, messageId: 0, exchangeType: ExchangeType.IKE_SA_INIT, datagrams: [f.datagram], scratch: NO_SCRATCH, tries: 0, timer: null });
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
  sa.state = deadState(sa);
  e.unregister(sa);
}

async function timedOut(e: EngineHost, sa: IkeSa, o: Outstanding): Promise<void> {
  sa.outstanding = null;
  const task = o.task;
  if (task.kind === 'ike-delete') { await performRequest(e, sa, ikeDeleteUnanswered(sa, { tag: 'delete-sent', reason: task.reason })); return; }
  const u = { tries: o.tries, exchange: exchangeOf(o.exchangeType), hint: unfragmentedHint(sa, o.exchangeType, o.datagrams, mtuOf(sa)) };
  await performRequest(e, sa, task.kind === 'dpd' ? livenessUnanswered(sa, { tag: 'liveness-sent' }, u) : requestUnanswered(sa, { ...u, task: task.kind }));
}

/**
 * Carry out the effects of a step of ours (steps/informational.ts) in order; `send`: where a
 * request goes (task-queue.ts numbers and arms it).
 */
export async function performRequest(e: EngineHost, sa: IkeSa, step: RequestStep, send?: (payloads: readonly IkePayload[]) => void): Promise<void> {
  const peer = sa.peer;
  for (const f of step.effects) {
    switch (f.kind) {
      case 'send':
        if (!send) throw new Error('an INFORMATIONAL request outside task-queue.ts');
        send(f.payloads);
        break;
      case 'set-state': sa.state = f.state; break;
      case 'error': e.failure(peer, f.failure); break;
      case 'teardown': await teardown(e, sa, f.reason); break;
      case 'retire': retire(e, sa); break;
      case 'retry-initiation': scheduleRetry(e, peer); break;
      case 'restart': if (!peer.terminated && e.liveSas(peer.config.name).length === 0) startInitiator(e, peer); break;
      case 'install-traps': if (!peer.terminated) e.installTraps(peer); break;
    }
  }
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
