// IKEv2 key derivation, RFC 7296:
//   §2.14  SKEYSEED = prf(Ni | Nr, g^ir)
//          {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)
//   §2.17  KEYMAT = prf+(SK_d, Ni | Nr)  or, with PFS,  prf+(SK_d, g^ir (new) | Ni | Nr)
//   §2.18  SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)   (rekeyed IKE SA, old SA's PRF)
// Nonces and SPIs go in as the bytes on the wire; their order never depends on our role.
import { SecretBytes } from '../../common/secret.js';
import { concatBytes } from '../../common/bytes.js';
import { encrAlg, integAlg, type EncrAlg, type IntegAlg } from './algorithms.js';
import { createPrf, prfPlus, type Prf } from './prf.js';
import { UnsupportedAlgorithmError } from './errors.js';

/** The negotiated IKE SA transforms (IDs from the chosen proposal). */
export interface IkeSuite {
  readonly encrId: number;
  /** KEY_LENGTH attribute in bits; omit for fixed-length ciphers. */
  readonly encrKeyBits?: number;
  readonly prfId: number;
  /** Absent (or IntegId.NONE = 0) with AEAD ciphers. */
  readonly integId?: number;
}

/** The resolved algorithms of an IkeSuite. */
export interface ResolvedSuite {
  readonly encr: EncrAlg;
  readonly integ: IntegAlg | null;
  readonly prf: Prf;
}

export function resolveSuite(s: IkeSuite): ResolvedSuite {
  const encr = encrAlg(s.encrId, s.encrKeyBits);
  const integId = s.integId ?? 0;
  if (encr.aead && integId !== 0)
    throw new UnsupportedAlgorithmError(`${encr.name} is AEAD and must not be combined with integrity algorithm ${integId} (RFC 5282 §8)`);
  if (!encr.aead && integId === 0) throw new UnsupportedAlgorithmError(`${encr.name} needs an integrity algorithm`);
  return { encr, integ: integId === 0 ? null : integAlg(integId), prf: createPrf(s.prfId) };
}

/** The seven IKE SA keys of §2.14. SK_ai/SK_ar are empty with AEAD; SK_ei/SK_er include the salt. */
export interface IkeSaKeys {
  readonly skD: SecretBytes;
  readonly skAi: SecretBytes;
  readonly skAr: SecretBytes;
  readonly skEi: SecretBytes;
  readonly skEr: SecretBytes;
  readonly skPi: SecretBytes;
  readonly skPr: SecretBytes;
}

export interface IkeKeyInputs {
  readonly suite: IkeSuite;
  /** g^ir from KeyShare.computeSharedSecret. */
  readonly sharedSecret: SecretBytes;
  readonly ni: Uint8Array;
  readonly nr: Uint8Array;
  /** 8-octet IKE SPIs as in the IKE header. */
  readonly spiI: Uint8Array;
  readonly spiR: Uint8Array;
}

/** SKEYSEED = prf(Ni | Nr, g^ir). HMAC PRFs take the whole nonce concatenation as the key. */
export function computeSkeyseed(prf: Prf, ni: Uint8Array, nr: Uint8Array, sharedSecret: SecretBytes): SecretBytes {
  return new SecretBytes(prf.compute(concatBytes(ni, nr), sharedSecret.expose()));
}

/** §2.18: SKEYSEED for the new IKE SA from the old SA's PRF and SK_d. */
export function computeRekeyedSkeyseed(oldPrf: Prf, oldSkD: SecretBytes, newSharedSecret: SecretBytes, ni: Uint8Array, nr: Uint8Array): SecretBytes {
  return new SecretBytes(oldPrf.compute(oldSkD, newSharedSecret.expose(), ni, nr));
}

/** Key lengths of the IKE SA (§2.14): PRF keys at the PRF's preferred (= output) length. */
export function ikeKeyLengths(r: ResolvedSuite): { prf: number; integ: number; encr: number } {
  return { prf: r.prf.alg.outputLength, integ: r.integ?.keyLength ?? 0, encr: r.encr.keyLength + r.encr.saltLength };
}

/** Expand SKEYSEED into the seven keys; `spiI`/`spiR` are the new SA's SPIs. */
export function expandIkeSaKeys(suite: IkeSuite, skeyseed: SecretBytes, ni: Uint8Array, nr: Uint8Array, spiI: Uint8Array, spiR: Uint8Array): IkeSaKeys {
  const r = resolveSuite(suite);
  const len = ikeKeyLengths(r);
  const total = 3 * len.prf + 2 * len.integ + 2 * len.encr;
  const km = prfPlus(r.prf, skeyseed, concatBytes(ni, nr, spiI, spiR), total).expose();
  let at = 0;
  const take = (n: number): SecretBytes => { const k = km.slice(at, at + n); at += n; return new SecretBytes(k); };
  const keys: IkeSaKeys = {
    skD: take(len.prf), skAi: take(len.integ), skAr: take(len.integ),
    skEi: take(len.encr), skEr: take(len.encr), skPi: take(len.prf), skPr: take(len.prf),
  };
  km.fill(0);
  return keys;
}

/** IKE_SA_INIT: derive all IKE SA keys from the DH result. */
export function deriveIkeSaKeys(k: IkeKeyInputs): IkeSaKeys {
  const prf = createPrf(k.suite.prfId);
  const skeyseed = computeSkeyseed(prf, k.ni, k.nr, k.sharedSecret);
  try { return expandIkeSaKeys(k.suite, skeyseed, k.ni, k.nr, k.spiI, k.spiR); } finally { skeyseed.wipe(); }
}

/** CREATE_CHILD_SA rekeying the IKE SA: SKEYSEED from the old SA, keys with the new suite/SPIs. */
export function deriveRekeyedIkeSaKeys(k: IkeKeyInputs & { readonly oldPrfId: number; readonly oldSkD: SecretBytes }): IkeSaKeys {
  const skeyseed = computeRekeyedSkeyseed(createPrf(k.oldPrfId), k.oldSkD, k.sharedSecret, k.ni, k.nr);
  try { return expandIkeSaKeys(k.suite, skeyseed, k.ni, k.nr, k.spiI, k.spiR); } finally { skeyseed.wipe(); }
}

/** The ESP/AH transforms of a Child SA; only their key lengths matter for KEYMAT. */
export interface ChildSuite {
  readonly encrId?: number;
  readonly encrKeyBits?: number;
  readonly integId?: number;
}

/** One direction's keys; `encr` includes the AEAD salt at its end (RFC 4106 §8.1, RFC 7634 §2). */
export interface ChildDirectionKeys { readonly encr: SecretBytes; readonly integ: SecretBytes }

/** §2.17: initiator-to-responder keys come first, encryption before integrity. */
export interface ChildSaKeys { readonly initiatorToResponder: ChildDirectionKeys; readonly responderToInitiator: ChildDirectionKeys }

export function childKeyLengths(s: ChildSuite): { encr: number; integ: number } {
  const encr = s.encrId === undefined || s.encrId === 0 ? null : encrAlg(s.encrId, s.encrKeyBits);
  const integ = s.integId === undefined || s.integId === 0 ? null : integAlg(s.integId);
  return { encr: encr ? encr.keyLength + encr.saltLength : 0, integ: integ?.keyLength ?? 0 };
}

/**
 * KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr [| SK(1) | ... | SK(n)]), cut per §2.17 (RFC 9370 §2.2.4 for the SK(n)). Pass `pfsSharedSecret` when the
 * CREATE_CHILD_SA carried KE payloads. `prfId` is the IKE SA's PRF.
 */
export function deriveChildSaKeys(a: {
  readonly prfId: number;
  readonly skD: SecretBytes;
  readonly suite: ChildSuite;
  readonly ni: Uint8Array;
  readonly nr: Uint8Array;
  readonly pfsSharedSecret?: SecretBytes;
  /** RFC 9370 §2.2.4: SK(1)..SK(n) of the IKE_FOLLOWUP_KE exchanges, appended after Nr in order. */
  readonly additionalSecrets?: readonly SecretBytes[];
}): ChildSaKeys {
  const len = childKeyLengths(a.suite);
  const extra = (a.additionalSecrets ?? []).map((x) => x.expose());
  const seed = a.pfsSharedSecret ? concatBytes(a.pfsSharedSecret.expose(), a.ni, a.nr, ...extra) : concatBytes(a.ni, a.nr);
  const km = prfPlus(createPrf(a.prfId), a.skD, seed, 2 * (len.encr + len.integ)).expose();
  seed.fill(0);
  let at = 0;
  const take = (n: number): SecretBytes => { const k = km.slice(at, at + n); at += n; return new SecretBytes(k); };
  const i2r = { encr: take(len.encr), integ: take(len.integ) };
  const r2i = { encr: take(len.encr), integ: take(len.integ) };
  km.fill(0);
  return { initiatorToResponder: i2r, responderToInitiator: r2i };
}
