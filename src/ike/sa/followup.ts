// What the drivers (tasks.ts as initiator, responder.ts as responder) share to run the
// IKE_FOLLOWUP_KE steps of steps/followup-ke.ts on an IKE SA (RFC 9370 §2.2.2): the run's state
// lives in sa.followup. For an IKE rekey the new IKE SA gets its keys here when the last exchange
// is done, and the driver hands the old SA's Child SAs over to it; for a Child SA the secrets go
// to the Child SA steps (child-tasks.ts), which derive KEYMAT and install it.
import type { SecretBytes } from '../../common/secret.js';
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import type { SelectedProposal } from '../policy/select.js';
import { consumeFollowupResponse, rekeyedIkeKeys, requestFollowup, respondFollowup, wipeSecrets, type FollowupFor, type FollowupKe, type FollowupStep, type RekeyedIkeInputs } from '../steps/followup-ke.js';
import { rekeyedKeys } from '../steps/ike-rekey.js';
import type { IkeFailure } from '../ports.js';
import type { Ctx } from './context.js';
import type { EngineHost } from './host.js';
import type { ChildFollowupPending, FollowupRun, IkeSa } from './ike-sa.js';
import { upKeysOf } from './ike-keys.js';

export type FollowupOutcome =
  /** More IKE_FOLLOWUP_KE exchanges follow. */
  | { readonly kind: 'continue' }
  /** The new IKE SA has its keys: register it and adopt it as the successor. */
  | { readonly kind: 'done'; readonly fresh: IkeSa }
  /** A Child SA's exchanges are done: SK(0)..SK(n) for its KEYMAT (the receiver wipes them). */
  | { readonly kind: 'child'; readonly pending: ChildFollowupPending; readonly secrets: readonly SecretBytes[] }
  /** The exchange failed; the IKE SA goes on. `pending`: the Child SA that was being negotiated. */
  | { readonly kind: 'failed'; readonly failure: IkeFailure; readonly pending: ChildFollowupPending | null };

function viewOf(ctx: Ctx, sa: IkeSa, of: FollowupFor): FollowupRun['view'] {
  return { random: ctx.random, allowWeak: sa.peer.config.ike.allowWeak ?? false, for: of };
}

/** The Child SA a run keys. */
function childOf(p: ChildFollowupPending): FollowupFor {
  const runtime = p.role === 'responder' ? p.choice.runtime : p.sent.tag === 'create-sent' ? p.sent.runtime : p.sent.old.runtime;
  return { kind: 'child', name: runtime.config.name };
}

/** Start an IKE rekey's run on `old` for `fresh` (the new IKE SA without keys, `selected` its proposal, `keys` what they come from). */
export function beginFollowup(ctx: Ctx, old: IkeSa, fresh: IkeSa, selected: SelectedProposal, keys: RekeyedIkeInputs, state: FollowupKe): void {
  abandonFollowup(old);
  old.followup = { for: 'ike', fresh, view: viewOf(ctx, old, { kind: 'ike' }), keys, selected, state };
}

/** Start a Child SA's run on `sa`. */
export function beginChildFollowup(ctx: Ctx, sa: IkeSa, pending: ChildFollowupPending, state: FollowupKe): void {
  abandonFollowup(sa);
  sa.followup = { for: 'child', pending, view: viewOf(ctx, sa, childOf(pending)), state };
}

/** Drop the run (the peer gave up on it, or ours failed), wiping the secrets it holds. */
export function abandonFollowup(sa: IkeSa): FollowupRun | null {
  const run = sa.followup ?? null;
  if (run) wipeSecrets(run.state);
  sa.followup = null;
  return run;
}

function settle(ctx: EngineHost, sa: IkeSa, run: FollowupRun, step: FollowupStep): FollowupOutcome {
  run.state = step.next;
  const pending = run.for === 'child' ? run.pending : null;
  for (const ef of step.effects) {
    if (ef.kind === 'failed') { abandonFollowup(sa); return { kind: 'failed', failure: ef.failure, pending }; }
    if (ef.kind === 'complete') {
      sa.followup = null;
      if (run.for === 'child') return { kind: 'child', pending: run.pending, secrets: ef.secrets };
      try {
        const raw = rekeyedIkeKeys(run.keys, ef.secrets);
        ctx.ports.keyLog?.ikeKeys({ spiI: run.fresh.spiI, spiR: run.fresh.spiR, keys: raw });
        const fresh = run.fresh;
        if (fresh.state.tag !== 'keying') throw new Error(`IKE_FOLLOWUP_KE keyed an IKE SA that is ${fresh.state.tag}`);
        fresh.state = { tag: 'established', up: fresh.state.up, keyed: { selected: run.selected, keys: upKeysOf(rekeyedKeys(ctx.random, fresh.role, run.selected, raw)) } };
      } finally { for (const x of ef.secrets) x.wipe(); }
      return { kind: 'done', fresh: run.fresh };
    }
  }
  return { kind: 'continue' };
}

/** Initiator: the payloads of the next IKE_FOLLOWUP_KE request, or null when none is due. */
export function nextFollowupRequest(sa: IkeSa): readonly IkePayload[] | null {
  const run = sa.followup;
  if (run?.state.tag !== 'to-send') return null;
  const step = requestFollowup(run.view, run.state);
  run.state = step.next;
  for (const ef of step.effects) if (ef.kind === 'send') return ef.payloads;
  return null;
}

/** Initiator: the response to our IKE_FOLLOWUP_KE request. */
export function onFollowupResponse(ctx: EngineHost, sa: IkeSa, m: IkeMessage): FollowupOutcome | null {
  const run = sa.followup;
  if (run?.state.tag !== 'ke-sent') return null;
  return settle(ctx, sa, run, consumeFollowupResponse(run.view, run.state, m));
}

/** Responder: the peer's IKE_FOLLOWUP_KE request; `reply` is the answer (under the IKE SA's keys). */
export function answerFollowupRequest(ctx: EngineHost, sa: IkeSa, m: IkeMessage): { readonly reply: readonly IkePayload[]; readonly outcome: FollowupOutcome } | null {
  const run = sa.followup;
  if (run?.state.tag !== 'awaiting') return null;
  const step = respondFollowup(run.view, run.state, m);
  const reply = step.effects.flatMap((ef) => (ef.kind === 'respond' ? ef.payloads : []));
  return { reply, outcome: settle(ctx, sa, run, step) };
}
