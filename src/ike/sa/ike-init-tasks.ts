// The driver of the IKE_SA_INIT steps (steps/ike-init.ts, steps/ike-init-responder.ts): it hands a
// step the state it expects, runs the responder's Diffie-Hellman on the crypto pool and allocates
// its SPI between the steps, and carries out the effects. task-retransmit.ts sends our first
// request (sendInit), task-responses.ts routes its answer here, responder.ts the peer's request.
import type { IkeMessage } from '../codec/message.js';
import { acceptInitRequest, consumeInitRequest, initDhFailed, type InitResponderEnv, type InitResponse } from '../steps/ike-init-responder.js';
import { consumeInitResponse, type InitResult, type InitStep } from '../steps/ike-init.js';
import type { EngineHost } from './host.js';
import type { IkeSa, Outstanding } from './ike-sa.js';
import { teardown } from './lifecycle.js';
import { arm, scheduleRetry, sendInit } from './task-retransmit.js';

/** What IKE_SA_INIT settled goes onto the SA record and into its state (both roles): half-open, or IKE_AUTH next. */
function applyInit(sa: IkeSa, r: InitResult): void {
  const init = { request: r.request, response: r.response };
  const intermediate = r.intermediate;
  const keyed = { selected: r.selected, keys: r.keys, ni: r.ni, nr: r.nr };
  sa.state = sa.role === 'initiator' ? { tag: 'auth-sent', init, intermediate, keyed } : { tag: 'init-done', init, intermediate, keyed };
  sa.spiR = r.spiR;
  sa.natLocal = r.natLocal; sa.natRemote = r.natRemote;
  sa.fragmentation = r.fragmentation;
  sa.peerHashes = r.peerHashes === null ? null : sharedHashes(r.peerHashes);
}

/**
 * Peers send one of a few SIGNATURE_HASH_ALGORITHMS lists (RFC 7427 §4): SAs share one array per
 * list instead of each holding its own (~180 bytes), up to a few distinct lists so that what peers
 * send cannot grow it.
 */
const hashLists = new Map<string, readonly number[]>();
function sharedHashes(ids: readonly number[]): readonly number[] {
  const key = ids.join(',');
  const known = hashLists.get(key);
  if (known !== undefined) return known;
  if (hashLists.size >= 16) return ids;
  const list = Object.freeze([...ids]);
  hashLists.set(key, list);
  return list;
}

/** Initiator: the answer to our IKE_SA_INIT; `o`: the request, re-armed when the answer is dropped. */
export async function onInitResponse(e: EngineHost, sa: IkeSa, m: IkeMessage, datagram: Uint8Array, o: Outstanding): Promise<void> {
  const s = sa.state;
  if (s.tag !== 'init-sent') { e.drop('unexpected-init-response'); arm(e, sa, o); return; }
  const step = consumeInitResponse(e.random, sa, s, m, datagram);
  // A cookie or another group: the step built the repeat of our request.
  if (step.next.tag === 'init-sent' && step.next !== s) { sendInit(e, sa, { next: step.next, effects: step.effects }); return; }
  for (const f of step.effects) {
    switch (f.kind) {
      case 'drop': e.drop(f.reason); arm(e, sa, o); break;
      case 'keyed':
        applyInit(sa, f.result);
        sa.nextRequestId = 1;
        break;
      case 'float':
        sa.local = { address: sa.local.address, port: 4500 };
        sa.remote = { address: sa.remote.address, port: 4500 };
        break;
      // RFC 9370 §2.2.1: the additional key exchanges, if any were chosen, come before IKE_AUTH.
      case 'next': sa.pending.unshift({ kind: f.task }); break;
      case 'responder-spi': sa.spiR = f.spi; break;
      case 'error': e.failure(sa.peer, f.failure); break;
      case 'teardown':
        await teardown(e, sa, 'negotiation-failed');
        scheduleRetry(e, sa.peer);
        break;
      case 'send': case 'respond': throw new Error(`IKE_SA_INIT ${f.kind} out of turn`);
    }
  }
}

/**
 * Responder: the peer's IKE_SA_INIT on the new half-open `sa` (indexed, not registered). True
 * when it is keyed and answered, for the caller to register; otherwise it is unregistered here.
 */
export async function answerInit(e: EngineHost, sa: IkeSa, m: IkeMessage, datagram: Uint8Array, o: Pick<InitResponderEnv, 'cookiesRequired' | 'blocked'>): Promise<boolean> {
  const step = await respondInit(e, sa, m, datagram, o);
  const created = step.next.tag === 'half-open' && !e.closed;
  if (!created) e.unregister(sa);
  // The engine closed while the DH ran: its timers are cancelled, so no new SA (nor answer) now.
  if (e.closed) { e.drop('engine-closed'); return false; }
  for (const f of step.effects) {
    switch (f.kind) {
      case 'keyed': applyInit(sa, f.result); break;
      case 'respond': e.ports.transport.send(f.datagram, sa.remote, sa.local); break;
      case 'drop': e.drop(f.reason); break;
      case 'error': e.failure(sa.peer, f.failure); break;
      default: throw new Error(`IKE_SA_INIT ${f.kind} out of turn`);
    }
  }
  return created;
}

/** The responder's steps, the DH and our SPI between them. */
async function respondInit(e: EngineHost, sa: IkeSa, m: IkeMessage, datagram: Uint8Array, o: Pick<InitResponderEnv, 'cookiesRequired' | 'blocked'>): Promise<InitStep<InitResponse>> {
  if (sa.state.tag !== 'idle') return { next: { tag: 'done' }, effects: [{ kind: 'drop', reason: 'unexpected-init-request' }] };
  const first = consumeInitRequest({ random: e.random, cookies: e.cookies, ...o }, { tag: 'received', ends: sa, request: new Uint8Array(datagram) }, m);
  if (first.next.tag !== 'chosen') return first;
  const s = first.next;
  let dh;
  try {
    dh = await e.crypto.run({ op: 'dh', group: s.group, privateValue: s.privateValue, peerPublicValue: s.peerPublicValue, allowWeak: sa.peer.config.ike.allowWeak ?? false });
  } catch (err) {
    return initDhFailed(s, err);
  }
  return acceptInitRequest(e.random, s, dh, e.newIkeSpi());
}
