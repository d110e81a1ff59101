// What the drivers (tasks.ts as initiator, responder.ts as responder) share to run the
// IKE_FOLLOWUP_KE steps of steps/followup-ke.ts on an old IKE SA being rekeyed (RFC 9370 §2.2.2):
// the run's state lives in sa.followup; when the last exchange is done the new IKE SA gets its
// keys here and the driver hands the old SA's Child SAs over to it, as after a plain IKE rekey.
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { installRekeyedKeys, rekeyedInputs } from '../exchanges/ike-rekey.js';
import { consumeFollowupResponse, rekeyedIkeKeys, requestFollowup, respondFollowup, wipeSecrets, type FollowupKe, type FollowupStep } from '../steps/followup-ke.js';
import type { IkeFailure } from '../ports.js';
import type { Ctx } from './context.js';
import type { IkeSa } from './ike-sa.js';

export type FollowupOutcome =
  /** More IKE_FOLLOWUP_KE exchanges follow. */
  | { readonly kind: 'continue' }
  /** The new IKE SA has its keys: register it and adopt it as the successor. */
  | { readonly kind: 'done'; readonly fresh: IkeSa }
  /** The rekey failed; the old IKE SA goes on. */
  | { readonly kind: 'failed'; readonly failure: IkeFailure };

/** Start a run on `old` for `fresh` (the new IKE SA without keys). */
export function beginFollowup(ctx: Ctx, old: IkeSa, fresh: IkeSa, state: FollowupKe): void {
  abandonFollowup(old);
  old.followup = { fresh, view: { random: ctx.random, allowWeak: old.peer.config.ike.allowWeak ?? false }, keys: rekeyedInputs(old, fresh), state };
}

/** Drop the run (the peer gave up on it, or ours failed), wiping the secrets it holds. */
export function abandonFollowup(old: IkeSa): void {
  if (old.followup) wipeSecrets(old.followup.state);
  old.followup = null;
}

function settle(ctx: Ctx, old: IkeSa, step: FollowupStep): FollowupOutcome {
  const run = old.followup!;
  run.state = step.next;
  for (const ef of step.effects) {
    if (ef.kind === 'failed') { abandonFollowup(old); return { kind: 'failed', failure: ef.failure }; }
    if (ef.kind === 'complete') {
      try { installRekeyedKeys(ctx, run.fresh, rekeyedIkeKeys(run.keys, ef.secrets)); } finally { for (const x of ef.secrets) x.wipe(); }
      old.followup = null;
      return { kind: 'done', fresh: run.fresh };
    }
  }
  return { kind: 'continue' };
}

/** Initiator: the payloads of the next IKE_FOLLOWUP_KE request, or null when none is due. */
export function nextFollowupRequest(old: IkeSa): readonly IkePayload[] | null {
  const run = old.followup;
  if (run?.state.tag !== 'to-send') return null;
  const step = requestFollowup(run.view, run.state);
  run.state = step.next;
  for (const ef of step.effects) if (ef.kind === 'send') return ef.payloads;
  return null;
}

/** Initiator: the response to our IKE_FOLLOWUP_KE request. */
export function onFollowupResponse(ctx: Ctx, old: IkeSa, m: IkeMessage): FollowupOutcome | null {
  const run = old.followup;
  if (run?.state.tag !== 'ke-sent') return null;
  return settle(ctx, old, consumeFollowupResponse(run.view, run.state, m));
}

/** Responder: the peer's IKE_FOLLOWUP_KE request; `reply` is the answer (under the old SA's keys). */
export function answerFollowupRequest(ctx: Ctx, old: IkeSa, m: IkeMessage): { readonly reply: readonly IkePayload[]; readonly outcome: FollowupOutcome } | null {
  const run = old.followup;
  if (run?.state.tag !== 'awaiting') return null;
  const step = respondFollowup(run.view, run.state, m);
  const reply = step.effects.flatMap((ef) => (ef.kind === 'respond' ? ef.payloads : []));
  return { reply, outcome: settle(ctx, old, step) };
}
