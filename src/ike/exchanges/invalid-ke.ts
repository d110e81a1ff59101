// INVALID_KE_PAYLOAD in answer to a CREATE_CHILD_SA we sent (RFC 7296 §1.3, §1.3.2, §2.7): the
// responder names the KE method it wants, and the initiator repeats the exchange with it. Once:
// a peer that asks again after our retry, asks for the group we sent, or asks for a group our
// proposals do not carry gets a clear failure instead of another round trip. IKE_SA_INIT has its
// own retry loop (steps/ike-init.ts consumeInitResponse).
import { TransformType } from '../constants.js';
import { acceptsDhGroup } from '../policy/convert.js';
import type { PolicyProposal } from '../policy/proposal.js';
import { transformName } from '../policy/keywords.js';
import type { IkeFailure } from '../ports.js';
import { ikeFailure } from '../sa/context.js';

export type KeRetry =
  | { readonly kind: 'retry'; readonly group: number }
  | { readonly kind: 'failed'; readonly failure: IkeFailure };

export function keRetry(a: {
  /** Our proposals for this exchange (IKE or ESP). */
  readonly proposals: readonly PolicyProposal[];
  /** The group of the KE payload we sent; null when we sent none. */
  readonly sent: number | null;
  /** The request already was a retry with a group the peer asked for. */
  readonly retried: boolean;
  /** The group the INVALID_KE_PAYLOAD names. */
  readonly wanted: number;
  /** What was refused, for the message: "the IKE SA rekey", "Child SA net". */
  readonly what: string;
}): KeRetry {
  const name = (g: number): string => transformName(TransformType.DH, g);
  const fail = (why: string): KeRetry => ({
    kind: 'failed',
    failure: ikeFailure({ code: 'ERR_IKE_INVALID_KE', notify: 'INVALID_KE_PAYLOAD', origin: 'remote', exchange: 'CREATE_CHILD_SA', message: `peer wants DH group ${name(a.wanted)} for ${a.what}, ${why}` }),
  });
  if (!acceptsDhGroup(a.proposals, a.wanted)) return fail('which our proposals do not offer');
  if (a.wanted === a.sent) return fail('the group we sent');
  if (a.retried) return fail(`after we already retried with ${a.sent === null ? 'none' : name(a.sent)}`);
  return { kind: 'retry', group: a.wanted };
}
