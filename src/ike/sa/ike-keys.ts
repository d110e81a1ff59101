// An IKE SA's keys and SK ciphers from the §2.14 key set, in one place: IKE_SA_INIT, the IKE
// rekey (§2.18) and a resumed checkpoint (restore.ts, without SK_pi/SK_pr) all build them the same
// way; and which of an IKE SA's states hold them (ike-sa.ts: PreAuthKeyed until IKE_AUTH, UpKeyed
// after), so code that needs keys asks for a state that has them.
import { SecretBytes } from '../../common/secret.js';
import type { Random } from '../../common/time.js';
import { createPrf } from '../crypto/prf.js';
import { createSkPair } from '../crypto/sk.js';
import type { IkeSaKeys, IkeSuite } from '../crypto/keys.js';
import type { SelectedProposal } from '../policy/select.js';
import type { IkeKeys, IkeSa, IkeSaState, IkeSaUp, IkeUpKeys, PreAuthKeyed, UpKeyed } from './ike-sa.js';

/** Up SAs hold no SK_p: it is only used for AUTH (§2.15), which they never compute again. */
const NO_SK_P = new SecretBytes(new Uint8Array(0));
const NO_KEY = new SecretBytes(new Uint8Array(0));

export function ikeKeysOf(a: {
  readonly suite: IkeSuite; readonly suiteText: string; readonly dhGroup: number; readonly raw: IkeSaKeys;
  readonly role: 'initiator' | 'responder'; readonly random: Random;
}): IkeKeys {
  return { ...upIkeKeysOf(a), skPi: a.raw.skPi, skPr: a.raw.skPr };
}

/** The keys of an IKE SA that is up (a resumed checkpoint's), without SK_pi/SK_pr (RFC 7296 §2.15). */
export function upIkeKeysOf(a: {
  readonly suite: IkeSuite; readonly suiteText: string; readonly dhGroup: number; readonly raw: Omit<IkeSaKeys, 'skPi' | 'skPr'>;
  readonly role: 'initiator' | 'responder'; readonly random: Random;
}): IkeUpKeys {
  const [skD, skAi, skAr, skEi, skEr] = packed([a.raw.skD, a.raw.skAi, a.raw.skAr, a.raw.skEi, a.raw.skEr]);
  // createSkPair reads only SK_a and SK_e.
  const pair = createSkPair(a.suite, { skD, skAi, skAr, skEi, skEr, skPi: NO_SK_P, skPr: NO_SK_P }, a.role, a.random);
  return {
    suite: a.suite, suiteText: a.suiteText, dhGroup: a.dhGroup, prf: createPrf(a.suite.prfId),
    skD, out: pair.outbound, in: pair.inbound, sk: { skAi, skAr, skEi, skEr },
  };
}

/**
 * The keys an IKE SA keeps for its life as views of one buffer, the given ones wiped: one
 * ArrayBuffer and its backing store instead of five (~100 bytes of wrappers each, a malloc each).
 */
function packed<const T extends readonly SecretBytes[]>(keys: T): { readonly [K in keyof T]: SecretBytes } {
  const buf = new Uint8Array(keys.reduce((n, k) => n + k.length, 0));
  let at = 0;
  return keys.map((k) => {
    // SK_a of an AEAD suite: no bytes, one shared object (a view costs ~100 bytes).
    if (k.length === 0) return NO_KEY;
    const view = buf.subarray(at, at + k.length);
    view.set(k.expose()); at += k.length; k.wipe();
    return new SecretBytes(view);
  }) as { readonly [K in keyof T]: SecretBytes };
}

/** The states of an IKE SA that is up and keyed: it sends and receives under `keyed.keys`. */
export type UpKeyedState = Extract<IkeSaState, { tag: 'established' | 'rekeyed' | 'deleting' }> & { readonly up: IkeSaUp; readonly keyed: UpKeyed };
/** An IKE SA in such a state: only such a one is rekeyed or has Child SAs negotiated on it. */
export type KeyedIkeSa = IkeSa & { readonly state: UpKeyedState };

export function upKeyed(sa: IkeSa): sa is KeyedIkeSa {
  const s = sa.state;
  return (s.tag === 'established' || s.tag === 'rekeyed' || s.tag === 'deleting') && s.up !== null && s.keyed !== null;
}

/** The keys an IKE SA's messages are protected with, in every state that has them (IKE_SA_INIT done, not dead). */
export function keysOf(sa: Pick<IkeSa, 'state'>): IkeUpKeys | null {
  const s = sa.state;
  switch (s.tag) {
    case 'auth-sent': case 'init-done': case 'established': case 'rekeyed': case 'deleting': return s.keyed?.keys ?? null;
    case 'idle': case 'init-sent': case 'keying': case 'dead': return null;
  }
}

/** An IKE SA's keys once it is up (RFC 7296 §2.15): SK_pi and SK_pr are wiped and dropped. */
export function upKeysOf(k: IkeKeys): IkeUpKeys {
  const { skPi, skPr, ...keys } = k;
  skPi.wipe(); skPr.wipe();
  return keys;
}

/** What an SA going up keeps of IKE_SA_INIT's outcome: not SK_pi/SK_pr, nor the nonces (later Child SAs and rekeys use fresh ones, §2.17, §2.18). */
export function upKeyedFrom(k: PreAuthKeyed): UpKeyed { return { selected: sharedSelection(k.selected), keys: upKeysOf(k.keys) }; }

/**
 * IKE SAs from IKE_SA_INIT chose one of a few suites, with the same (empty) SPI: up SAs share one
 * record per distinct choice instead of each keeping its own (~440 bytes: the record, its SPI
 * array and transform list). Up to 64 distinct ones, so that what peers choose cannot grow it.
 */
const selections = new Map<string, SelectedProposal>();
function sharedSelection(s: SelectedProposal): SelectedProposal {
  // `transforms` lists every chosen transform; the named fields are picked from it.
  let key = `${s.num}|${s.protocol}|${s.spi.join('.')}`;
  for (const t of s.transforms) key += `|${t.type}.${t.id}.${t.keyLength ?? ''}`;
  const known = selections.get(key);
  if (known !== undefined) return known;
  if (selections.size < 64) selections.set(key, s);
  return s;
}
