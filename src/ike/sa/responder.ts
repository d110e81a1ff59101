// Exchanges the peer initiates: IKE_SA_INIT (half-open bound, cookies under load), and on an
// existing IKE SA the request for the expected message ID, answered once and cached for
// retransmissions (RFC 7296 §2.1-2.3).
import { equalBytes, Reader } from '../../common/bytes.js';
import type { ParseError } from '../../common/errors.js';
import { decodeHeader, type IkeHeader } from '../codec/header.js';
import { encodeMessage } from '../codec/message.js';
import { replyNotifyFor } from '../codec/payloads/notify-data.js';
import { ExchangeType, NotifyError, ProtocolId } from '../constants.js';
import { notify as notifyOf } from '../codec/payloads/notify.js';
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { respondIntermediate } from '../steps/intermediate.js';
import { applyIntermediateKeys, intermediateOf, intermediateView, preAuth, setIntermediate } from './intermediate.js';
import { abandonFollowup, answerFollowupRequest } from './followup.js';
import type { Endpoint } from '../ports.js';
import { ikeFailure } from './context.js';
import type { EngineHost } from './host.js';
import { spiHex, type IkeSa } from './ike-sa.js';
import { teardown } from './lifecycle.js';
import { answerChildFollowup, answerChildRequest, releaseSpi } from './child-tasks.js';
import { answerAuth } from './ike-auth-tasks.js';
import { answerInit } from './ike-init-tasks.js';
import { answerIkeFollowupDone, answerIkeRekey } from './ike-rekey-tasks.js';
import { answerInformational } from './informational-tasks.js';
import { keyed } from '../steps/ike-rekey.js';
import { mtuOf, newSa } from './task-retransmit.js';
import { headerFor, sealMessage } from './wire.js';

/**
 * The peer's NAT mapping changed (sa.remote already holds the new one): point the installed SAs'
 * UDP encapsulation at it. Callers: an authenticated request from a new address/port (below), and
 * the kernel's report of an authenticated ESP packet from one (EngineHost.natMapping).
 */
export async function followPeer(e: EngineHost, sa: IkeSa): Promise<void> {
  e.log?.info({ peer: sa.peer.config.name, remote: `${sa.remote.address}:${sa.remote.port}` }, 'following the peer\'s new NAT mapping');
  for (const c of sa.children.values()) {
    if (c.state.tag === 'deleted') continue;
    const encap = { sourcePort: sa.local.port, destinationPort: sa.remote.port };
    const ref = { ...c.ref, local: sa.local.address, remote: sa.remote.address };
    try {
      await e.kernel.updateChildSa(c.ref, { encap, local: ref.local, remote: ref.remote });
      c.ref = ref; c.encap = encap;
    } catch (err) {
      e.log?.warn({ peer: ref.peer, child: ref.child, err: String(err) }, 'kernel encap update failed');
    }
  }
}

/** IKE_SA_INIT requests whose Diffie-Hellman is running: half-open SAs to be, counted toward the cookie threshold. */
const initsInFlight = new WeakMap<EngineHost, number>();

export async function handleInitRequest(e: EngineHost, m: IkeMessage, datagram: Uint8Array, from: Endpoint, to: Endpoint): Promise<void> {
  // §3.1: the first message has a non-zero SPIi, SPIr 0 and message ID 0; anything else is not
  // one and gets neither an answer nor state (nor a lookup as a retransmission).
  if (!isFirstMessage(m.header)) { e.drop('bad-init-header'); return; }
  const key = `${from.address}|${from.port}|${spiHex(m.header.initiatorSpi)}`;
  const existing = e.initIndex.get(key);
  if (existing !== undefined) {
    // §2.1: a retransmitted IKE_SA_INIT gets the same response; anything else with this SPI is dropped.
    const init = existing.state.tag === 'init-done' ? existing.state.init : null;
    if (init !== null && equalBytes(init.request, datagram)) e.ports.transport.send(init.response, from, to);
    e.drop('retransmitted-request');
    return;
  }
  const peers = e.candidates(from, to);
  const peer = peers[0];
  if (peer === undefined) { e.drop('no-peer-config'); return; }
  const sa = newSa(e, peer, 'responder', m.header.initiatorSpi, to, from);
  // RFC 8019 §4.6: one address answering cookies must not take every half-open slot, nor many
  // addresses all of them. Checked after the COOKIE, so only requests from a real address count.
  // Requests whose key exchange is still running count as half-open: a burst arrives in one turn,
  // before any of them is registered.
  const inFlight = initsInFlight.get(e) ?? 0;
  const blocked = (): string | null => e.limits.blockInit(from.address) ?? (e.halfOpen + inFlight >= e.options.halfOpenLimit ? evictHalfOpen(e, from.address) : null);
  // Indexed while the DH runs, so a retransmission of this request is dropped rather than worked on twice.
  e.indexInit(key, sa);
  initsInFlight.set(e, inFlight + 1);
  let created;
  try {
    // steps/ike-init-responder.ts: answered statelessly, dropped, or keyed and answered.
    created = await answerInit(e, sa, m, datagram, { cookiesRequired: e.halfOpen + inFlight >= e.options.cookieThreshold, blocked });
  } finally {
    initsInFlight.set(e, (initsInFlight.get(e) ?? 1) - 1);
  }
  if (!created) return;
  e.register(sa);
  e.halfOpen++;
  e.limits.addHalfOpen(from.address, sa);
  sa.expectedRequestId = 1;
  sa.timers.halfOpen = e.clock.setTimer(e.options.halfOpenTimeoutMs, () => {
    void e.enqueue(sa, async () => { if (sa.state.tag === 'init-done') { e.drop('half-open-timeout'); await teardown(e, sa, 'negotiation-failed'); } });
  });
}

/** At the half-open limit: make room by the fairness rule of limits.ts evictFor, or refuse. */
function evictHalfOpen(e: EngineHost, address: string): string | null {
  const victim = e.limits.evictFor(address);
  if (victim === null) return 'half-open-limit';
  e.drop('half-open-evicted');
  void e.enqueue(victim, async () => { if (victim.state.tag === 'init-done') await teardown(e, victim, 'negotiation-failed'); });
  return null;
}

function isFirstMessage(h: IkeHeader): boolean { return h.initiatorSpi !== 0n && h.responderSpi === 0n && h.messageId === 0; }

/**
 * An authenticated, in-window request we cannot parse (unknown critical payload, payloads the
 * exchange does not allow, malformed inner payloads): answer with the notify the codec names
 * (RFC 7296 §2.5, §2.21.2) so the peer stops retransmitting, and change nothing else.
 */
export function answerMalformed(e: EngineHost, sa: IkeSa, exchangeType: number, messageId: number, err: ParseError): void {
  sendResponse(e, sa, exchangeType, messageId, [replyNotifyFor(err)]);
}

/** RFC 7296 §2.5: an IKE_SA_INIT request we cannot decode gets an unencrypted error reply, statelessly. */
export function answerUndecodableInit(e: EngineHost, datagram: Uint8Array, err: ParseError, from: Endpoint, to: Endpoint): boolean {
  let h;
  try { h = decodeHeader(new Reader(datagram)); } catch { return false; }
  if (h.exchangeType !== ExchangeType.IKE_SA_INIT || h.response || !isFirstMessage(h)) return false;
  if (e.candidates(from, to).length === 0) return false;
  const header = { initiatorSpi: h.initiatorSpi, responderSpi: 0n, exchangeType: ExchangeType.IKE_SA_INIT, initiator: false, response: true, higherVersion: false, minorVersion: 0, messageId: 0 };
  e.ports.transport.send(encodeMessage(header, [replyNotifyFor(err)]), from, to);
  return true;
}

function sendResponse(e: EngineHost, sa: IkeSa, exchangeType: number, messageId: number, payloads: readonly IkePayload[]): void {
  const datagrams = sealMessage(sa, headerFor(sa, exchangeType, messageId, true), payloads, mtuOf(sa));
  sa.lastResponse = { messageId, datagrams };
  sa.expectedRequestId = messageId + 1;
  e.persistPeer(sa.peer.config.name);
  for (const d of datagrams) e.ports.transport.send(d, sa.remote, sa.local);
}

/**
 * IKE_INTERMEDIATE request (RFC 9242, RFC 9370 §2.2.1): the answer leaves under the current keys,
 * then the keys are updated. One the IKE SA did not negotiate (no ADDKE chosen, all done, or
 * after IKE_AUTH) is answered INVALID_SYNTAX; before IKE_AUTH that ends the half-open SA, since
 * its IntAuth chain could no longer match the peer's.
 */
async function answerIntermediate(e: EngineHost, sa: IkeSa, m: IkeMessage, id: number): Promise<void> {
  const type = ExchangeType.IKE_INTERMEDIATE;
  const s = intermediateOf(sa);
  if (s?.tag !== 'awaiting' || sa.state.tag !== 'init-done' || !preAuth(sa)) {
    sendResponse(e, sa, type, id, [notifyOf(NotifyError.INVALID_SYNTAX)]);
    if (sa.state.tag !== 'init-done') return;
    e.failure(sa.peer, ikeFailure({ code: 'ERR_IKE_INTERMEDIATE_UNEXPECTED', exchange: 'IKE_INTERMEDIATE', message: 'peer sent an IKE_INTERMEDIATE request no additional key exchange was negotiated for (RFC 9370 §2.2.1)' }));
    await teardown(e, sa, 'negotiation-failed');
    return;
  }
  const step = respondIntermediate(intermediateView(e, sa), s, m, headerFor(sa, type, id, true));
  setIntermediate(sa, step.next);
  for (const ef of step.effects) {
    if (ef.kind === 'respond') sendResponse(e, sa, type, id, ef.payloads);
    else if (ef.kind === 'update-keys') {
      const opener = applyIntermediateKeys(e, sa, ef.raw);
      if (sa.lastResponse !== null) sa.lastResponse = { ...sa.lastResponse, opener };
    } else if (ef.kind === 'failed') {
      e.failure(sa.peer, ef.failure);
      await teardown(e, sa, 'negotiation-failed');
      return;
    }
  }
}

/** One authenticated, in-window request on `sa`. */
export async function handleRequest(e: EngineHost, sa: IkeSa, m: IkeMessage, from: Endpoint, to: Endpoint): Promise<void> {
  // §2.23: follow the peer's address/port (NAT mapping changes, the float to 4500).
  const moved = sa.state.tag === 'established' && (sa.natLocal || sa.natRemote) && (sa.remote.address !== from.address || sa.remote.port !== from.port);
  sa.remote = from; sa.local = to;
  if (moved) await followPeer(e, sa);
  const id = m.header.messageId;
  const type = m.header.exchangeType;
  switch (type) {
    case ExchangeType.IKE_AUTH: {
      // steps/ike-auth-responder.ts: IDi may pick another config at these addresses.
      const candidates = [sa.peer, ...e.candidates(from, to).filter((p) => p !== sa.peer)];
      await answerAuth(e, sa, m, candidates, (payloads) => sendResponse(e, sa, type, id, payloads));
      return;
    }
    case ExchangeType.IKE_INTERMEDIATE: {
      await answerIntermediate(e, sa, m, id);
      return;
    }
    case ExchangeType.IKE_FOLLOWUP_KE: {
      const r = sa.state.tag === 'established' ? answerFollowupRequest(e, sa, m) : null;
      // No run of ours this could belong to (RFC 9370 §2.2.2).
      if (r === null) { sendResponse(e, sa, type, id, [notifyOf(NotifyError.STATE_NOT_FOUND)]); return; }
      const out = r.outcome;
      // A Child SA's last exchange: its answer leaves once the kernel has the SA (child-tasks.ts).
      if (out.kind === 'child' && out.pending.role === 'responder' && keyed(sa)) { await answerChildFollowup(e, sa, out.pending, out.secrets, r.reply, (payloads) => sendResponse(e, sa, type, id, payloads)); return; }
      if (out.kind === 'failed') {
        e.failure(sa.peer, out.failure);
        if (out.pending?.role === 'responder') releaseSpi(e, sa, out.pending.inboundSpi);
      }
      // Children move before the response leaves, as for a plain IKE rekey.
      if (out.kind === 'done') answerIkeFollowupDone(e, sa, out.fresh);
      sendResponse(e, sa, type, id, r.reply);
      return;
    }
    case ExchangeType.CREATE_CHILD_SA: {
      // An IKE_FOLLOWUP_KE run the peer left for this request (its window is one, and it restarted
      // or gave up): drop it, and the SPI it held.
      const run = sa.followup;
      if (run && (run.for === 'ike' ? run.fresh.role : run.pending.role) === 'responder') {
        abandonFollowup(sa);
        if (run.for === 'child' && run.pending.role === 'responder') releaseSpi(e, sa, run.pending.inboundSpi);
      }
      const respond = (payloads: readonly IkePayload[]): void => sendResponse(e, sa, type, id, payloads);
      if (m.first('sa')?.proposals[0]?.protocolId === ProtocolId.IKE) { answerIkeRekey(e, sa, m, respond); return; }
      // consumeChildRequest would refuse it alike: only an established IKE SA takes new Child SAs.
      if (!keyed(sa)) { respond([notifyOf(NotifyError.TEMPORARY_FAILURE)]); return; }
      await answerChildRequest(e, sa, m, respond);
      return;
    }
    case ExchangeType.INFORMATIONAL:
      await answerInformational(e, sa, m, (payloads) => sendResponse(e, sa, type, id, payloads));
      return;
    default:
      e.drop('unknown-exchange');
  }
}
