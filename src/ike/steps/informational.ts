// INFORMATIONAL (RFC 7296 §1.4) as pure steps (the shape of child.ts): Delete of Child SAs and of
// the IKE SA (§1.4.1), liveness checks (§2.4, an empty request), and error notifies about the IKE
// SA (§2.21.2). The requests are built here; the peer's request is answered by
// consumeInformationalRequest, whose effects the driver (sa/informational-tasks.ts) carries out
// in order. A Child SA the peer deletes goes to the Child SA steps (child.ts peerDeletedChild), an
// IKE SA rekey its Delete settles to the IKE rekey steps (ike-rekey.ts peerDeletedRekeyingIke).
//
//   HDR, SK {D(ESP, our inbound SPIs)}  -->   <-- HDR, SK {D(ESP, its inbound SPIs of those pairs)}
//   HDR, SK {D(IKE)}                    -->   <-- HDR, SK {}
//   HDR, SK {}                          -->   <-- HDR, SK {}                     (liveness check)
//   HDR, SK {N(AUTHENTICATION_FAILED)}  -->                                      (after IKE_AUTH, §2.21.2)
import { NotifyError, ProtocolId } from '../constants.js';
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { spi32, spiNumber } from '../exchanges/child-sa.js';
import type { DownReason, IkeFailure } from '../ports.js';
import { ikeFailure } from '../sa/context.js';
import type { ChildSa, IkeSa } from '../sa/ike-sa.js';
import { peerDeletedRekeyingIke } from './ike-rekey.js';

/** Our Delete of Child SAs: the SPIs we receive on (§3.11). */
export function deleteChildPayloads(children: readonly ChildSa[]): IkePayload[] {
  return [{ kind: 'delete', protocolId: ProtocolId.ESP, spis: children.map((c) => spi32(c.ref.inboundSpi)) }];
}

/** Our Delete of the IKE SA the request travels on. */
export function deleteIkePayloads(): IkePayload[] { return [{ kind: 'delete', protocolId: ProtocolId.IKE, spis: [] }]; }

export type InformationalEffect =
  /** The peer's Delete settles our colliding IKE SA rekey (ike-rekey.ts peerDeletedRekeyingIke). */
  | { readonly kind: 'settle-ike-rekey' }
  /** The peer deleted `child` (found by our outbound SPI = its inbound SPI): child.ts peerDeletedChild. */
  | { readonly kind: 'peer-deleted-child'; readonly child: ChildSa }
  | { readonly kind: 'respond'; readonly payloads: readonly IkePayload[] }
  /** Recorded as the peer's lastError and emitted as an `error` event. */
  | { readonly kind: 'error'; readonly failure: IkeFailure }
  /** Make-before-break after the peer's reauthentication: start sending on `child`. */
  | { readonly kind: 'activate-outbound'; readonly child: ChildSa }
  /** The IKE SA goes, with its Child SAs, events and kernel states. */
  | { readonly kind: 'teardown'; readonly reason: DownReason }
  /** The superseded IKE SA goes quietly (its Child SAs live on its successor). */
  | { readonly kind: 'retire' };

export interface InformationalStep { readonly next: { readonly tag: 'done' }; readonly effects: readonly InformationalEffect[] }

/** Responder: the peer's INFORMATIONAL request on `sa`: Delete payloads and notifies; an empty request is a liveness check. */
export function consumeInformationalRequest(sa: IkeSa, m: IkeMessage): InformationalStep {
  const deleted: ChildSa[] = [];
  let deleteIke = false;
  for (const d of m.all('delete')) {
    if (d.protocolId === ProtocolId.IKE) { deleteIke = true; continue; }
    if (d.protocolId !== ProtocolId.ESP) continue;
    for (const raw of d.spis) {
      const spi = spiNumber(raw);
      const c = [...sa.children.values()].find((x) => x.ref.outboundSpi === spi);
      if (c !== undefined && !deleted.includes(c)) deleted.push(c);
    }
  }
  const effects: InformationalEffect[] = [];
  // §2.8.2: the Delete of the old IKE SA can overtake the answer to our colliding rekey: the
  // peer's new SA takes over first, and the old one is then retired below.
  const handedOver = deleteIke && peerDeletedRekeyingIke(sa).effects.length > 0;
  if (handedOver) effects.push({ kind: 'settle-ike-rekey' });
  for (const child of deleted) effects.push({ kind: 'peer-deleted-child', child });
  // §1.4.1: answer a Child delete with Deletes for our halves, except those we are deleting
  // ourselves already (their own Delete request is in flight); an IKE delete gets an empty reply.
  const answer = deleted.filter((c) => c.state.tag !== 'deleting');
  effects.push({ kind: 'respond', payloads: deleteIke || answer.length === 0 ? [] : deleteChildPayloads(answer) });
  if (m.errorNotifies()[0]?.type === NotifyError.AUTHENTICATION_FAILED) {
    effects.push(
      { kind: 'error', failure: ikeFailure({ code: 'ERR_IKE_AUTH_FAILED', notify: 'AUTHENTICATION_FAILED', origin: 'remote', exchange: 'INFORMATIONAL', message: 'peer rejected our authentication' }) },
      { kind: 'teardown', reason: 'negotiation-failed' },
    );
    return { next: { tag: 'done' }, effects };
  }
  if (!deleteIke) return { next: { tag: 'done' }, effects };
  if (handedOver || sa.state.tag === 'rekeyed') effects.push({ kind: 'retire' });
  // The peer's reauthentication is complete (reauth.ts): its new IKE SA has the Child SAs; send on
  // them from now on, then the old ones go (their inbound states linger).
  else if (sa.reauth?.tag === 'superseded' && sa.state.tag === 'established') {
    for (const c of sa.children.values()) if (c.state.tag === 'rekeyed' && c.state.successor) effects.push({ kind: 'activate-outbound', child: c.state.successor });
    effects.push({ kind: 'teardown', reason: 'reauthenticated' });
  } else if (sa.state.tag !== 'dead') effects.push({ kind: 'teardown', reason: 'peer-deleted' });
  return { next: { tag: 'done' }, effects };
}
