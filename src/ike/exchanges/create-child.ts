// CREATE_CHILD_SA for Child SAs (RFC 7296 §1.3.1 new child, §1.3.3 rekey, §2.8 make-before-break,
// §2.25 collisions with deletes). The IKE SA rekey variant lives in ike-rekey.ts.
//
//   new child:   HDR, SK {SA, Ni, [KEi], TSi, TSr, [N(USE_TRANSPORT_MODE)]}  -->
//   rekey:       HDR, SK {N(REKEY_SA), SA, Ni, [KEi], TSi, TSr}             -->
//                                   <-- HDR, SK {SA, Nr, [KEr], TSi, TSr}
//                                   <-- HDR, SK {N(TEMPORARY_FAILURE | CHILD_SA_NOT_FOUND | NO_PROPOSAL_CHOSEN | TS_UNACCEPTABLE | INVALID_KE_PAYLOAD)}
import { NotifyError, NotifyStatus, ProtocolId } from '../constants.js';
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { notify } from '../codec/payloads/notify.js';
import { rekeySa, rekeySaNotify } from '../codec/payloads/notify-data.js';
import type { IkeFailure, KernelChildSa } from '../ports.js';
import type { Ctx } from '../sa/context.js';
import type { ChildRequestScratch, ChildRuntime, ChildSa, IkeSa } from '../sa/ike-sa.js';
import { childOfferPayloads, negotiateChildResponder, prepareChildOffer, spi32, spiNumber } from './child-sa.js';

/** Initiator: offer a new Child SA for `child`, or (with `old`) a rekey of `old` keeping its selectors. */
export async function buildCreateChildRequest(ctx: Ctx, sa: IkeSa, child: ChildRuntime, old: ChildSa | null, group?: number): Promise<{ payloads: IkePayload[]; scratch: ChildRequestScratch }> {
  const g = group === undefined ? {} : { group };
  const scratch = await prepareChildOffer(ctx, sa, child, old ? { inIkeAuth: false, localTs: old.localTs, remoteTs: old.remoteTs, mode: old.mode, ...g } : { inIkeAuth: false, ...g });
  const payloads: IkePayload[] = [
    ...(old ? [rekeySaNotify(ProtocolId.ESP, spi32(old.ref.inboundSpi))] : []),
    ...childOfferPayloads(scratch, false),
  ];
  return { payloads, scratch };
}

export type CreateChildRequestOutcome =
  | { readonly kind: 'created'; readonly reply: IkePayload[]; readonly child: ChildSa; readonly install: KernelChildSa }
  | { readonly kind: 'rekeyed'; readonly reply: IkePayload[]; readonly old: ChildSa; readonly child: ChildSa; readonly install: KernelChildSa; readonly collision: boolean }
  | { readonly kind: 'refused'; readonly reply: IkePayload[]; readonly failure: IkeFailure | null };

/** Responder: a CREATE_CHILD_SA request that is not an IKE rekey. */
export async function respondCreateChild(ctx: Ctx, sa: IkeSa, m: IkeMessage): Promise<CreateChildRequestOutcome> {
  if (sa.state.tag !== 'established') return { kind: 'refused', reply: [notify(NotifyError.TEMPORARY_FAILURE)], failure: null };
  const rk = m.notify(NotifyStatus.REKEY_SA);
  if (rk === undefined) {
    const n = await negotiateChildResponder(ctx, sa, m, { inIkeAuth: false, only: null, exchange: 'CREATE_CHILD_SA' });
    return n.ok ? { kind: 'created', reply: n.reply, child: n.child, install: n.install } : { kind: 'refused', reply: n.reply, failure: n.failure };
  }
  let named: { protocolId: number; spi: Uint8Array };
  try { named = rekeySa(rk); } catch { return { kind: 'refused', reply: [notify(NotifyError.INVALID_SYNTAX)], failure: null }; }
  const spi = spiNumber(named.spi);
  // REKEY_SA names the SPI the peer receives on, i.e. our outbound SPI, and its protocol: our
  // Child SAs are all ESP, so an AH SA with that SPI is not one of them (§3.10.1).
  const old = named.protocolId === ProtocolId.ESP ? [...sa.children.values()].find((c) => c.ref.outboundSpi === spi) : undefined;
  if (old === undefined) return { kind: 'refused', reply: [{ ...notify(NotifyError.CHILD_SA_NOT_FOUND), protocolId: named.protocolId, spi: spi32(spi) }], failure: null };
  // §2.25.1: a rekey of an SA we are deleting (or already replaced) gets TEMPORARY_FAILURE.
  if (old.state.tag !== 'installed' && old.state.tag !== 'rekeying') return { kind: 'refused', reply: [notify(NotifyError.TEMPORARY_FAILURE)], failure: null };
  const n = await negotiateChildResponder(ctx, sa, m, { inIkeAuth: false, only: old.runtime, exchange: 'CREATE_CHILD_SA' });
  if (!n.ok) return { kind: 'refused', reply: n.reply, failure: n.failure };
  // Make-before-break (§2.8): the responder installs the new inbound SA now, but keeps sending on
  // the old one until the initiator deletes it.
  const install: KernelChildSa = { ...n.install, outboundActive: false };
  n.child.outboundPending = true;
  // The kernel does not hold the outbound state until the switch: the checkpoint must (restore.ts).
  n.child.pendingOutbound = n.install.outbound;
  return { kind: 'rekeyed', reply: n.reply, old, child: n.child, install, collision: old.state.tag === 'rekeying' };
}
