// Exchanges we initiate, strongSwan task-queue style: tasks wait in `pending` while a request is
// outstanding (window size 1, RFC 7296 §2.3), each request is retransmitted with exponential
// backoff (charon: 4 s × 1.8^n, 5 retransmits) until its response arrives or the limit ends
// the IKE SA (§2.4), and each response goes to the step for its task kind.
import { ExchangeType, NotifyError } from '../constants.js';
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { notify } from '../codec/payloads/notify.js';
import { preferredDhGroup } from '../policy/convert.js';
import { ourRekeyLoses } from '../exchanges/collision.js';
import { buildAuthRequest, consumeAuthResponse, intermediatePending } from '../exchanges/ike-auth.js';
import { consumeIntermediateResponse, requestIntermediate } from '../steps/intermediate.js';
import { applyIntermediateKeys, intermediateView } from './intermediate.js';
import { consumeInitResponse, startInit } from '../exchanges/ike-init.js';
import { buildIkeRekeyRequest, completeIkeRekey } from '../exchanges/ike-rekey.js';
import { keRetry } from '../exchanges/invalid-ke.js';
import { deleteChildPayloads, deleteIkePayloads } from '../exchanges/informational.js';
import type { DownReason } from '../ports.js';
import { abandonChild, onChildDeleteAnswered, onChildFollowup, onChildResponse, releaseSpi, startChild } from './child-tasks.js';
import { ikeFailure } from './context.js';
import type { EngineHost } from './host.js';
import { FRAGMENT_MTU, REKEY_RETRY_MS, REKEYED_SA_TIMEOUT_MS } from './defaults.js';
import { ikeSpisText, type IkeSa, type Outstanding, type PeerRuntime, type Task } from './ike-sa.js';
import { emitChildUp, establish, heldBySurvivor, installChild, migrateChildren, scheduleIkeTimers, teardown } from './lifecycle.js';
import { finishReauth, moveReauthLink, noteReauthChildFailed } from './reauth.js';
import { abandonFollowup, beginFollowup, nextFollowupRequest, onFollowupResponse } from './followup.js';
import type { Step } from '../steps/child.js';
import { headerFor, sealMessage, unfragmentedHint } from './wire.js';

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

export function queueTask(e: EngineHost, sa: IkeSa, task: Task): void {
  if (sa.state.tag === 'dead') return;
  if (task.kind === 'child-rekey' && sa.pending.some((t) => t.kind === 'child-rekey' && t.old === task.old)) return;
  if ((task.kind === 'ike-rekey' || task.kind === 'dpd') && sa.pending.some((t) => t.kind === task.kind)) return;
  sa.pending.push(task);
  void e.enqueue(sa, () => next(e, sa));
}

/** Start pending tasks until one sends a request (the others may have become moot). */
export async function next(e: EngineHost, sa: IkeSa): Promise<void> {
  while (sa.outstanding === null && sa.pending.length > 0) {
    const task = sa.pending.shift()!;
    if (await start(e, sa, task)) return;
  }
}

function send(e: EngineHost, sa: IkeSa, task: Task, exchangeType: number, payloads: readonly IkePayload[], extra: Pick<Outstanding, 'child' | 'ikeRekey'> = {}): void {
  const messageId = sa.nextRequestId++;
  const datagrams = sealMessage(sa, headerFor(sa, exchangeType, messageId, false), payloads, mtuOf(sa));
  arm(e, sa, { task, messageId, exchangeType, datagrams, tries: 0, timer: null, ...extra });
}

/** The offer a Child SA request step made, kept with the request for its answer. */
function offerOf(step: Step): Pick<Outstanding, 'child'> {
  return step.next.tag === 'create-sent' || step.next.tag === 'rekey-sent' ? { child: step.next.offer } : {};
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

async function start(e: EngineHost, sa: IkeSa, task: Task): Promise<boolean> {
  const established = sa.state.tag === 'established';
  switch (task.kind) {
    case 'ike-init': return false;
    case 'ike-intermediate': {
      const s = sa.intermediate;
      if (sa.state.tag !== 'auth-sent' || s?.tag !== 'to-send') return false;
      const header = headerFor(sa, ExchangeType.IKE_INTERMEDIATE, sa.nextRequestId, false);
      const step = requestIntermediate(intermediateView(e, sa), s, header);
      sa.intermediate = step.next;
      for (const ef of step.effects) if (ef.kind === 'send') send(e, sa, task, ExchangeType.IKE_INTERMEDIATE, ef.payloads);
      return true;
    }
    case 'ike-auth': {
      if (sa.state.tag !== 'auth-sent' || intermediatePending(sa)) return false;
      const { payloads, child } = await buildAuthRequest(e, sa);
      send(e, sa, task, ExchangeType.IKE_AUTH, payloads, child ? { child } : {});
      return true;
    }
    case 'child-create': {
      if (!established) return false;
      if (sa.followup) { deferChild(e, sa, task); return false; }
      const g = task.group === undefined ? {} : { group: task.group };
      await startChild(e, sa, { tag: 'create', runtime: task.child, ...g }, (payloads, step) => send(e, sa, task, ExchangeType.CREATE_CHILD_SA, payloads, offerOf(step)));
      return true;
    }
    case 'child-rekey': {
      const old = task.old;
      if (!established || old.state.tag !== 'installed' || sa.children.get(old.ref.inboundSpi) !== old) return false;
      if (sa.followup) { deferChild(e, sa, task); return false; }
      const g = task.group === undefined ? {} : { group: task.group };
      await startChild(e, sa, { tag: 'rekey', old, ...g }, (payloads, step) => send(e, sa, task, ExchangeType.CREATE_CHILD_SA, payloads, offerOf(step)));
      return true;
    }
    case 'child-delete': {
      if (!established) return false;
      if (task.reason === 'terminated' && task.child.state.tag !== 'deleted') task.child.state = { tag: 'deleting' };
      send(e, sa, task, ExchangeType.INFORMATIONAL, deleteChildPayloads([task.child]));
      return true;
    }
    case 'ike-rekey': {
      // Superseded by a reauthentication: the new IKE SA replaces this one, it is not rekeyed.
      if (sa.reauth?.tag === 'superseded') return false;
      if (!established || [...sa.children.values()].some((c) => c.state.tag === 'rekeying')) {
        if (established) sa.timers.rekey = e.clock.setTimer(REKEY_RETRY_MS, () => { void e.enqueue(sa, () => queueTask(e, sa, task)); });
        return false;
      }
      // A peer's IKE_FOLLOWUP_KE run on this SA is still open: ours waits for it.
      if (sa.followup) { sa.timers.rekey = e.clock.setTimer(REKEY_RETRY_MS, () => { void e.enqueue(sa, () => queueTask(e, sa, task)); }); return false; }
      const { payloads, scratch } = buildIkeRekeyRequest(e, sa, task.group);
      send(e, sa, task, ExchangeType.CREATE_CHILD_SA, payloads, { ikeRekey: scratch });
      return true;
    }
    case 'ike-followup': {
      const payloads = established ? nextFollowupRequest(sa) : null;
      if (payloads === null) return false;
      send(e, sa, task, ExchangeType.IKE_FOLLOWUP_KE, payloads);
      return true;
    }
    case 'ike-delete': {
      if (sa.state.tag === 'dead' || sa.state.tag === 'init-done' || sa.state.tag === 'init-sent' || sa.state.tag === 'auth-sent') return false;
      if (task.reason === 'duplicate') sa.state = { tag: 'deleting', sendOn: heldBySurvivor(e, sa) };
      else if (task.reason === 'terminated' || task.reason === 'reauthenticated') sa.state = { tag: 'deleting' };
      send(e, sa, task, ExchangeType.INFORMATIONAL, deleteIkePayloads());
      return true;
    }
    case 'dpd': {
      if (!established) return false;
      send(e, sa, task, ExchangeType.INFORMATIONAL, []);
      return true;
    }
  }
}

/** The peer's IKE_FOLLOWUP_KE run (sa/followup.ts) holds the IKE SA's one run slot: try the Child SA task later. */
function deferChild(e: EngineHost, sa: IkeSa, task: Task): void {
  e.clock.setTimer(REKEY_RETRY_MS, () => { void e.enqueue(sa, () => queueTask(e, sa, task)); });
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

/** The old IKE SA hands everything to `successor` (after our or the peer's IKE rekey). */
export function adoptSuccessor(e: EngineHost, old: IkeSa, successor: IkeSa): void {
  migrateChildren(e, old, successor);
  moveReauthLink(old, successor);
  for (const t of Object.values(old.timers)) t?.cancel();
  old.timers = { rekey: null, dpd: null, halfOpen: null, rekeyed: null };
  old.state = { tag: 'rekeyed', successor };
  e.emit({ type: 'ike-rekeyed', peer: old.peer.config.name, oldIkeSpis: ikeSpisText(old), ikeSpis: ikeSpisText(successor), suite: successor.keys?.suiteText ?? '' });
  scheduleIkeTimers(e, successor);
  e.persistPeer(successor.peer.config.name);
  if (successor.pending.length > 0) void e.enqueue(successor, () => next(e, successor));
}

export async function handleResponse(e: EngineHost, sa: IkeSa, m: IkeMessage, datagram: Uint8Array): Promise<void> {
  const o = sa.outstanding;
  if (o === null) return;
  o.timer?.cancel();
  sa.outstanding = null;
  const task = o.task;
  switch (task.kind) {
    case 'ike-init': await onInit(e, sa, m, datagram, o); break;
    case 'ike-intermediate': if (!await onIntermediate(e, sa, m)) return; break;
    case 'ike-auth': await onAuth(e, sa, m, o); break;
    case 'child-create':
    case 'child-rekey': await onChildResponse(e, sa, m, o, task); break;
    case 'child-delete': await onChildDeleteAnswered(e, sa, task); break;
    case 'ike-rekey': await onIkeRekey(e, sa, m, o, task); break;
    case 'ike-followup': await onFollowup(e, sa, m); break;
    case 'ike-delete':
      if (task.reason === 'terminated') await teardown(e, sa, 'terminated');
      else if (task.reason === 'duplicate') await teardown(e, sa, 'replaced');
      else if (task.reason === 'reauthenticated') await teardown(e, sa, 'reauthenticated');
      else retire(e, sa);
      return;
    case 'dpd': break;
  }
  await next(e, sa);
  // A reauthentication whose new IKE SA now has every Child SA it can get deletes the old one.
  finishReauth(e, sa);
  // A response can change state without a request following it (IKE_AUTH done, child installed).
  e.persistPeer(sa.peer.config.name);
}

async function onInit(e: EngineHost, sa: IkeSa, m: IkeMessage, datagram: Uint8Array, o: Outstanding): Promise<void> {
  const r = consumeInitResponse(e, sa, m, datagram);
  switch (r.kind) {
    case 'drop': e.drop(r.reason); arm(e, sa, o); return;
    case 'retry': {
      const d = startInit(e, sa, r.group, r.cookie, r.retries, r.ni);
      arm(e, sa, { task: o.task, messageId: 0, exchangeType: ExchangeType.IKE_SA_INIT, datagrams: [d], tries: 0, timer: null });
      return;
    }
    case 'failed':
      e.failure(sa.peer, r.failure);
      await teardown(e, sa, 'negotiation-failed');
      scheduleRetry(e, sa.peer);
      return;
    case 'ok':
      sa.nextRequestId = 1;
      // RFC 7296 §2.23: behind a NAT (or forced), move IKE to port 4500 from IKE_AUTH on.
      if ((sa.natLocal || sa.natRemote) && sa.local.port === 500) {
        sa.local = { address: sa.local.address, port: 4500 };
        sa.remote = { address: sa.remote.address, port: 4500 };
      }
      // RFC 9370 §2.2.1: the additional key exchanges, if any were chosen, come before IKE_AUTH.
      sa.pending.unshift(sa.intermediate ? { kind: 'ike-intermediate' } : { kind: 'ike-auth' });
  }
}

/** IKE_INTERMEDIATE response (steps/intermediate.ts); false when the IKE SA is gone. */
async function onIntermediate(e: EngineHost, sa: IkeSa, m: IkeMessage): Promise<boolean> {
  const s = sa.intermediate;
  if (s?.tag !== 'ke-sent') { e.drop('unexpected-intermediate-response'); return true; }
  const step = consumeIntermediateResponse(intermediateView(e, sa), s, m);
  sa.intermediate = step.next;
  for (const ef of step.effects) {
    if (ef.kind === 'update-keys') applyIntermediateKeys(e, sa, ef.raw);
    else if (ef.kind === 'failed') {
      e.failure(sa.peer, ef.failure);
      await teardown(e, sa, 'negotiation-failed');
      scheduleRetry(e, sa.peer);
      return false;
    }
  }
  sa.pending.unshift(step.next.tag === 'done' ? { kind: 'ike-auth' } : { kind: 'ike-intermediate' });
  return true;
}

async function onAuth(e: EngineHost, sa: IkeSa, m: IkeMessage, o: Outstanding): Promise<void> {
  const r = await consumeAuthResponse(e, sa, m, o.child);
  if (r.kind === 'drop') { e.drop(r.reason); arm(e, sa, o); return; }
  if (r.kind === 'failed') {
    e.failure(sa.peer, r.failure);
    releaseSpi(e, sa, o.child?.spi);
    if (r.notifyPeer) {
      // §2.21.2: tell the responder, without waiting for an answer.
      const id = sa.nextRequestId++;
      for (const d of sealMessage(sa, headerFor(sa, ExchangeType.INFORMATIONAL, id, false), [notify(NotifyError.AUTHENTICATION_FAILED)], mtuOf(sa))) e.ports.transport.send(d, sa.remote, sa.local);
    }
    await teardown(e, sa, 'negotiation-failed');
    scheduleRetry(e, sa.peer);
    return;
  }
  establish(e, sa);
  if (r.child) {
    if (await installChild(e, sa, r.child.sa, r.child.install)) emitChildUp(e, r.child.sa);
    else abandonChild(e, sa, r.child.sa, { kind: 'child-create', child: r.child.sa.runtime });
  } else if (r.childFailure) {
    e.failure(sa.peer, r.childFailure);
    releaseSpi(e, sa, o.child?.spi);
    if (sa.peer.children[0]) noteReauthChildFailed(sa, sa.peer.children[0].config.name);
  }
  for (const c of sa.peer.children.slice(1)) sa.pending.push({ kind: 'child-create', child: c });
}

async function onIkeRekey(e: EngineHost, sa: IkeSa, m: IkeMessage, o: Outstanding, task: Extract<Task, { kind: 'ike-rekey' }>): Promise<void> {
  const scratch = o.ikeRekey!;
  const r = completeIkeRekey(e, sa, scratch, m);
  const collision = sa.ikeCollision;
  sa.ikeCollision = null;
  if (!r.ok) {
    // Ours failed, the peer's went through: its SA is the successor, and the peer deletes the old one.
    if (collision) { adoptSuccessor(e, sa, collision.peerSa); awaitOldIkeDelete(e, sa); return; }
    let failure = r.failure;
    if (r.retryGroup !== undefined) {
      // §1.3.2: repeat the rekey at once with the group the peer named, once (invalid-ke.ts).
      const k = keRetry({ proposals: sa.peer.ikeProposals, sent: scratch.share.group, retried: task.group !== undefined, wanted: r.retryGroup, what: 'the IKE SA rekey' });
      if (k.kind === 'retry') { sa.pending.unshift({ kind: 'ike-rekey', group: k.group }); return; }
      failure = k.failure;
    }
    // Like any refused rekey: the IKE SA still works, try again later from its own group. Two
    // rekeys with IKE_FOLLOWUP_KE that met refuse each other (ike-rekey.ts): the SA's original
    // initiator retries first, so they do not meet again.
    if (!r.temporary) e.failure(sa.peer, failure);
    const wait = r.temporary && sa.selected?.additionalKeyExchanges && sa.role === 'responder' ? 2 * REKEY_RETRY_MS : REKEY_RETRY_MS;
    if (sa.state.tag === 'established') sa.timers.rekey = e.clock.setTimer(wait, () => { void e.enqueue(sa, () => queueTask(e, sa, { kind: 'ike-rekey' })); });
    return;
  }
  const fresh = r.sa;
  if (r.followup) {
    // The peer's rekey got in while ours was open: with IKE_FOLLOWUP_KE to come, ours yields.
    if (collision) { for (const x of r.followup.secrets) x.wipe(); adoptSuccessor(e, sa, collision.peerSa); awaitOldIkeDelete(e, sa); return; }
    beginFollowup(e, sa, fresh, r.followup);
    sa.pending.unshift({ kind: 'ike-followup' });
    return;
  }
  e.register(fresh);
  if (collision && ourRekeyLoses([scratch.ni, fresh.nr], collision.nonces)) {
    adoptSuccessor(e, sa, collision.peerSa);
    awaitOldIkeDelete(e, sa); // the winner deletes the old IKE SA
    fresh.state = { tag: 'rekeyed', successor: collision.peerSa };
    queueTask(e, fresh, { kind: 'ike-delete', reason: 'redundant' });
    return;
  }
  adoptSuccessor(e, sa, fresh);
  if (collision) {
    // We won (§2.8.1): the peer's new IKE SA is redundant and the peer deletes it. It is superseded,
    // not live: its Delete retires it quietly (no ike-down), and it goes on its own if none comes.
    collision.peerSa.state = { tag: 'rekeyed', successor: fresh };
    awaitOldIkeDelete(e, collision.peerSa);
  }
  queueTask(e, sa, { kind: 'ike-delete', reason: 'rekeyed' });
}

/** The answer to our IKE_FOLLOWUP_KE (RFC 9370 §2.2.2): the next one, or the new IKE SA takes over. */
async function onFollowup(e: EngineHost, sa: IkeSa, m: IkeMessage): Promise<void> {
  const r = onFollowupResponse(e, sa, m);
  if (r === null) { e.drop('unexpected-followup-response'); return; }
  if (r.kind === 'continue') { sa.pending.unshift({ kind: 'ike-followup' }); return; }
  // A Child SA's run (child-tasks.ts): installed, or refused like its CREATE_CHILD_SA could be.
  if (r.kind === 'child' && r.pending.role === 'initiator') { await onChildFollowup(e, sa, r.pending, { secrets: r.secrets }, m); return; }
  if (r.kind === 'failed' && r.pending?.role === 'initiator') { await onChildFollowup(e, sa, r.pending, { failure: r.failure }, m); return; }
  if (r.kind === 'child') return;
  if (r.kind === 'failed') {
    // Like any refused rekey: the IKE SA still works, try again later.
    abandonFollowup(sa);
    e.failure(sa.peer, r.failure);
    if (sa.state.tag === 'established') sa.timers.rekey = e.clock.setTimer(REKEY_RETRY_MS, () => { void e.enqueue(sa, () => queueTask(e, sa, { kind: 'ike-rekey' })); });
    return;
  }
  e.register(r.fresh);
  adoptSuccessor(e, sa, r.fresh);
  queueTask(e, sa, { kind: 'ike-delete', reason: 'rekeyed' });
}

/** Responder side of an IKE rekey: the old SA waits for the peer's Delete, but not forever. */
export function awaitOldIkeDelete(e: EngineHost, old: IkeSa): void {
  old.timers.rekeyed = e.clock.setTimer(REKEYED_SA_TIMEOUT_MS, () => { void e.enqueue(old, () => { if (old.state.tag === 'rekeyed') retire(e, old); }); });
}
