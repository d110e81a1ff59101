// One authenticated-or-not IKE message on an IKE SA we hold, after the engine found the SA by
// SPI: the RFC 7296 checks before anything acts on it (payload rules, §2.1 message-ID window and
// retransmitted requests, decryption and reassembly), then the response or request handler.
import { ExchangeType } from '../constants.js';
import { checkInnerPayloads, checkOuterPayloads } from '../codec/rules.js';
import type { IkeMessage } from '../codec/message.js';
import { ParseError } from '../../common/errors.js';
import { IntegrityError } from '../crypto/errors.js';
import type { Endpoint } from '../ports.js';
import type { EngineHost } from './host.js';
import * as D from './defaults.js';
import { authenticated, type IkeSa } from './ike-sa.js';
import { answerMalformed, handleRequest } from './responder.js';
import { handleResponse } from './tasks.js';
import { openMessage, verifyRetransmission } from './wire.js';

/** When each SA last resent its cached response (RFC 7296 §2.1 retransmissions). */
const resentAt = new WeakMap<IkeSa, number>();

export async function onMessage(e: EngineHost, sa: IkeSa, m: IkeMessage, datagram: Uint8Array, from: Endpoint, to: Endpoint): Promise<void> {
  if (sa.state.tag === 'dead') { e.drop('dead-sa'); return; }
  const h = m.header;
  if (h.exchangeType === ExchangeType.IKE_SA_INIT) {
    if (sa.outstanding?.task.kind !== 'ike-init') { e.drop('unexpected-response'); return; }
    try { checkOuterPayloads(h.exchangeType, true, m.payloads); } catch { e.drop('payload-rules'); return; }
    await handleResponse(e, sa, m, datagram);
    return;
  }
  try { checkOuterPayloads(h.exchangeType, h.response, m.payloads); } catch { e.drop('payload-rules'); return; }
  // §1.4: INFORMATIONAL exchanges follow the initial ones; on an SA not yet authenticated, a
  // Delete or notify comes from whoever ran IKE_SA_INIT with us, so it is neither acted on nor answered.
  if (!h.response && h.exchangeType === ExchangeType.INFORMATIONAL && !authenticated(sa)) { e.drop('unauthenticated-informational'); return; }
  if (!h.response) {
    if (sa.lastResponse !== null && h.messageId === sa.lastResponse.messageId && h.messageId + 1 === sa.expectedRequestId) {
      // §2.1 retransmitted request: resend the cached response (RFC 7383 §2.6.1: on fragment 1
      // only), once the datagram verifies, so a forged one with a seen message ID gets nothing.
      const env = m.encrypted();
      if (env?.kind === 'sk' || (env?.kind === 'skf' && env.fragmentNumber === 1)) {
        try { verifyRetransmission(sa, m, datagram); } catch (err) { e.drop(err instanceof IntegrityError ? 'integrity' : 'malformed'); return; }
        // A captured request verifies however often it is replayed, from any source address:
        // one resend per D.RESEND_INTERVAL_MS bounds the reflection. Peers retransmit less often.
        const now = e.clock.now(); const last = resentAt.get(sa);
        if (last !== undefined && now - last < D.RESEND_INTERVAL_MS) { e.drop('resend-rate'); return; }
        resentAt.set(sa, now);
        for (const d of sa.lastResponse.datagrams) e.ports.transport.send(d, from, to);
      }
      e.drop('retransmitted-request');
      return;
    }
    if (h.messageId !== sa.expectedRequestId) { e.drop('window'); return; }
  } else if (sa.outstanding === null || sa.outstanding.messageId !== h.messageId) { e.drop('unexpected-response'); return; }
  let opened;
  try { opened = openMessage(sa, m, datagram, e.limits); } catch (err) {
    e.drop(err instanceof IntegrityError ? 'integrity' : 'malformed');
    // Decrypted fine but the inner payloads are bad: the peer is authentic, so tell it why.
    if (!h.response && err instanceof ParseError) answerMalformed(e, sa, h.exchangeType, h.messageId, err);
    return;
  }
  if (opened.kind === 'drop') { e.drop(opened.reason); return; }
  if (opened.kind === 'partial') return;
  const inner = opened.message;
  try { checkInnerPayloads(h.exchangeType, h.response, inner.payloads); } catch (err) {
    e.drop('payload-rules');
    if (!h.response && err instanceof ParseError) answerMalformed(e, sa, h.exchangeType, h.messageId, err);
    return;
  }
  sa.lastInboundMs = e.clock.now();
  if (h.response) await handleResponse(e, sa, inner, datagram);
  else await handleRequest(e, sa, inner, from, to);
}
