// What the drivers (tasks.ts as initiator, responder.ts as responder) share to run the
// IKE_INTERMEDIATE steps of steps/intermediate.ts on an IkeSa: the steps' view of the SA, and the
// key update (RFC 9370 §2.2.1) that replaces the SA's keys and SK ciphers.
import type { SkCipher } from '../crypto/sk.js';
import type { IkeSaKeys } from '../crypto/keys.js';
import { spiBytes } from './ike-sa.js';
import type { Intermediate, IntermediateView } from '../steps/intermediate.js';
import type { Ctx } from './context.js';
import type { EngineHost } from './host.js';
import { ikeKeysOf } from './ike-keys.js';
import type { IkeSa, IkeSaState } from './ike-sa.js';

/** The IKE_INTERMEDIATE run of an IKE SA between IKE_SA_INIT and IKE_AUTH; null in other states or when none was chosen. */
export function intermediateOf(sa: IkeSa): Intermediate | null {
  return sa.state.tag === 'auth-sent' || sa.state.tag === 'init-done' ? sa.state.intermediate : null;
}

/** The run's next state, as a step returned it. */
export function setIntermediate(sa: IkeSa, next: Intermediate): void {
  if (sa.state.tag === 'auth-sent' || sa.state.tag === 'init-done') sa.state = { ...sa.state, intermediate: next };
}

/** An IKE SA between IKE_SA_INIT and IKE_AUTH: the only one IKE_INTERMEDIATE runs on. */
export type PreAuthIkeSa = IkeSa & { readonly state: Extract<IkeSaState, { tag: 'auth-sent' | 'init-done' }> };
export function preAuth(sa: IkeSa): sa is PreAuthIkeSa { return sa.state.tag === 'auth-sent' || sa.state.tag === 'init-done'; }

/** The steps' view of `sa`, keyed since IKE_SA_INIT. */
export function intermediateView(ctx: Ctx, sa: PreAuthIkeSa): IntermediateView {
  const { keys: k, ni, nr } = sa.state.keyed;
  return {
    suite: k.suite, prf: k.prf, skD: k.skD, skPi: k.skPi, skPr: k.skPr, ni, nr,
    spiI: spiBytes(sa.spiI), spiR: spiBytes(sa.spiR), random: ctx.random, allowWeak: sa.peer.config.ike.allowWeak ?? false,
  };
}

/**
 * Replace the SA's keys; returns the inbound cipher they replace (a retransmitted request verifies
 * under it). The drivers set the run to the step's next state first: 'done' means these
 * are the keys IKE_AUTH and the SA use (the ones a key log gets).
 */
export function applyIntermediateKeys(ctx: EngineHost, sa: PreAuthIkeSa, raw: IkeSaKeys): SkCipher {
  // Read afresh: the run's state was just set on it.
  const s = sa.state;
  const old = s.keyed.keys;
  if (intermediateOf(sa)?.tag === 'done') ctx.ports.keyLog?.ikeKeys({ spiI: sa.spiI, spiR: sa.spiR, keys: raw });
  const keys = ikeKeysOf({ suite: old.suite, suiteText: old.suiteText, dhGroup: old.dhGroup, raw, role: sa.role, random: ctx.random });
  sa.state = { ...s, keyed: { ...s.keyed, keys } };
  for (const k of [old.skD, old.skPi, old.skPr]) k.wipe();
  return old.in;
}
