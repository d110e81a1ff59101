// The driver of the IKE_AUTH steps (steps/ike-auth.ts, steps/ike-auth-responder.ts): it builds the
// state a step expects from the IKE SA, allocates the first Child SA's SPI before a step runs, and
// carries out the step's effects in order against the engine, reporting the kernel's install
// result to the next step. task-queue.ts starts our request, task-responses.ts routes its answer
// here, responder.ts the peer's request.
import { ExchangeType } from '../constants.js';
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { acceptAuthRequest, answerInstalled, authTooEarly, consumeAuthRequest } from '../steps/ike-auth-responder.js';
import { consumeAuthResponse, firstChildInstalled, requestAuth, type AuthBasis, type AuthStep } from '../steps/ike-auth.js';
import { abandonChild, holdForPeerReauth, releaseSpi } from './child-tasks.js';
import type { EngineHost } from './host.js';
import type { ChildRequestScratch, IkeSa, Outstanding, PeerRuntime } from './ike-sa.js';
import { emitChildUp, establish, installChild, teardown } from './lifecycle.js';
import { noteReauthChildFailed } from './reauth.js';
import { arm, mtuOf, scheduleRetry } from './task-retransmit.js';
import { authIkeView } from './views.js';
import { headerFor, sealMessage } from './wire.js';

type PreAuth = Extract<IkeSa['state'], { tag: 'auth-sent' | 'init-done' }>;

/** RFC 9370: IKE_AUTH only once every additional key exchange is done. */
function intermediatePending(s: PreAuth): boolean {
  return s.intermediate !== null && s.intermediate.tag !== 'done';
}

/** What AUTH covers: the IKE_SA_INIT messages, nonces, keys and IntAuth chain of the state `s`. */
function basisOf(sa: IkeSa, s: PreAuth): AuthBasis {
  const intAuth = s.intermediate?.tag === 'done' ? s.intermediate.chain : null;
  const k = s.keyed;
  return { initRequest: s.init.request, initResponse: s.init.response, ni: k.ni, nr: k.nr, keys: k.keys, intAuth, peerHashes: sa.peerHashes };
}

/** Initiator: send IKE_AUTH once IKE_SA_INIT and every IKE_INTERMEDIATE are done; false if not yet. */
export async function startAuth(e: EngineHost, sa: IkeSa, send: (payloads: readonly IkePayload[], offer: ChildRequestScratch | null) => void): Promise<boolean> {
  const basis = sa.state.tag === 'auth-sent' && !intermediatePending(sa.state) ? basisOf(sa, sa.state) : null;
  if (basis === null) return false;
  const first = sa.peer.children[0];
  const spi = first ? await e.kernel.allocSpi({ local: sa.local.address, remote: sa.remote.address, reqid: first.reqid }) : null;
  const step = await requestAuth(e, { tag: 'ready', peer: sa.peer, basis }, { spi, initialContact: e.initialContact(sa), messageId: sa.nextRequestId });
  for (const f of step.effects) if (f.kind === 'send') send(f.payloads, step.next.offer);
  return true;
}

/** Initiator: the answer to our IKE_AUTH; `o.scratch` holds the first Child SA we offered, if any. */
export async function onAuthResponse(e: EngineHost, sa: IkeSa, m: IkeMessage, o: Outstanding): Promise<void> {
  const s = sa.state;
  if (s.tag !== 'auth-sent') { e.drop('unexpected-auth-response'); arm(e, sa, o); return; }
  const basis = basisOf(sa, s);
  const step = await consumeAuthResponse(e, authIkeView(sa, s.keyed), { tag: 'sent', peer: sa.peer, basis, offer: o.scratch.kind === 'child' ? o.scratch.offer : null }, m);
  const installed = await perform(e, sa, step, {});
  if (step.next.tag === 'installing') await perform(e, sa, firstChildInstalled(step.next, installed), {});
}

/** Responder: the peer's IKE_AUTH on the half-open `sa`; `candidates`: peer configs at its addresses, sa.peer first. */
export async function answerAuth(e: EngineHost, sa: IkeSa, m: IkeMessage, candidates: readonly PeerRuntime[], respond: (payloads: readonly IkePayload[]) => void): Promise<void> {
  const s = sa.state;
  if (s.tag !== 'init-done') { e.drop('unexpected-auth-request'); return; }
  if (intermediatePending(s)) { await perform(e, sa, authTooEarly(), { respond }); return; }
  const basis = basisOf(sa, s);
  // Read before the steps' effects establish the SA (which drops IKE_SA_INIT's nonces from its state).
  const ike = authIkeView(sa, s.keyed);
  const step = await consumeAuthRequest(e, ike, { tag: 'awaiting', peer: sa.peer, basis }, m, candidates);
  await perform(e, sa, step, { respond });
  if (step.next.tag !== 'chosen') return;
  const inboundSpi = await e.kernel.allocSpi({ local: sa.local.address, remote: sa.remote.address, reqid: step.next.choice.runtime.reqid });
  const accepted = acceptAuthRequest(e, ike, step.next, inboundSpi);
  const installed = await perform(e, sa, accepted, { respond });
  await perform(e, sa, answerInstalled(accepted.next, installed), { respond });
}

/** Carry out a step's effects in order; true when it asked for an install and the kernel took it. */
async function perform(e: EngineHost, sa: IkeSa, step: AuthStep, io: { readonly respond?: (payloads: readonly IkePayload[]) => void }): Promise<boolean> {
  let installed = false;
  for (const f of step.effects) {
    switch (f.kind) {
      case 'send': throw new Error('an IKE_AUTH request outside startAuth');
      case 'respond':
        if (!io.respond) throw new Error('an IKE_AUTH answer outside responder.ts');
        io.respond(f.payloads);
        break;
      case 'inform': {
        // §2.21.2: tell the responder, without waiting for an answer.
        const id = sa.nextRequestId++;
        for (const d of sealMessage(sa, headerFor(sa, ExchangeType.INFORMATIONAL, id, false), f.payloads, mtuOf(sa))) e.ports.transport.send(d, sa.remote, sa.local);
        break;
      }
      case 'use-peer': {
        const before = sa.peer.config.name;
        sa.peer = f.peer;
        if (f.peer.config.name !== before) e.rehome(sa, before);
        break;
      }
      case 'establish':
        establish(e, sa, f.remoteId, f.initialContact === null ? null : { initialContact: f.initialContact });
        break;
      case 'install':
        installed = await installChild(e, sa, f.child, f.replaces === null ? f.install : holdForPeerReauth(e, sa, f.child, f.install, f.replaces));
        break;
      case 'replace-older':
        // §2.4: the peer has no state for older IKE SAs with us; drop them (and their children).
        // Only SAs that were up before this one started: in a simultaneous start the other SA is
        // as new as this one, and resolveDuplicates settles which of the two stays.
        for (const other of e.liveSas(sa.peer.config.name))
          if (other !== sa && other.state.tag === 'established' && other.state.up.upSerial < sa.serial) await teardown(e, other, 'replaced');
        break;
      case 'abandon': abandonChild(e, sa, f.child, { kind: 'child-create', child: f.child.runtime }); break;
      case 'release-spi': releaseSpi(e, sa, f.spi); break;
      case 'queue-child': sa.pending.push({ kind: 'child-create', child: f.child }); break;
      case 'note-failed': noteReauthChildFailed(sa, f.name); break;
      case 'child-up': emitChildUp(e, f.child); break;
      case 'error': e.failure(sa.peer, f.failure); break;
      case 'teardown':
        await teardown(e, sa, 'negotiation-failed');
        if (f.retry) scheduleRetry(e, sa.peer);
        break;
    }
  }
  return installed;
}
