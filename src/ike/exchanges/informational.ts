// INFORMATIONAL (RFC 7296 §1.4): Delete of Child SAs and of the IKE SA (§1.4.1), liveness checks
// (§2.4, an empty request), and error notifies about the IKE SA.
//
//   HDR, SK {D(ESP, our inbound SPIs)}  -->   <-- HDR, SK {D(ESP, its inbound SPIs of those pairs)}
//   HDR, SK {D(IKE)}                    -->   <-- HDR, SK {}
//   HDR, SK {}                          -->   <-- HDR, SK {}                     (DPD)
import { ProtocolId } from '../constants.js';
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import type { ChildSa, IkeSa } from '../sa/ike-sa.js';
import { spi32, spiNumber } from './child-sa.js';

export function deleteChildPayloads(children: readonly ChildSa[]): IkePayload[] {
  return [{ kind: 'delete', protocolId: ProtocolId.ESP, spis: children.map((c) => spi32(c.ref.inboundSpi)) }];
}

export function deleteIkePayloads(): IkePayload[] { return [{ kind: 'delete', protocolId: ProtocolId.IKE, spis: [] }]; }

export interface InformationalRequestOutcome {
  readonly reply: IkePayload[];
  /** Child SAs the peer deleted (found by our outbound SPI = its inbound SPI). */
  readonly deletedChildren: ChildSa[];
  readonly deleteIke: boolean;
  /** An error notify about the IKE SA (e.g. AUTHENTICATION_FAILED after IKE_AUTH, §2.21.2). */
  readonly errorNotify: number | null;
}

/** Responder: process Delete payloads and notifies; an empty request is a liveness check. */
export function respondInformational(sa: IkeSa, m: IkeMessage): InformationalRequestOutcome {
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
  const err = m.errorNotifies()[0];
  // §1.4.1: answer a Child delete with Deletes for our halves, except those we are deleting
  // ourselves already (their own Delete request is in flight); an IKE delete gets an empty reply.
  const answer = deleted.filter((c) => c.state.tag !== 'deleting');
  const reply: IkePayload[] = deleteIke || answer.length === 0 ? [] : deleteChildPayloads(answer);
  return { reply, deletedChildren: deleted, deleteIke, errorNotify: err?.type ?? null };
}

