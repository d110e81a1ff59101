// AUTH payload computation and verification, RFC 7296 §2.15:
//
//   InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI,  MACedIDForI = prf(SK_pi, RestOfInitIDPayload)
//   ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR,  MACedIDForR = prf(SK_pr, RestOfRespIDPayload)
//   PSK:   AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets> )
//   Signatures: RFC 7427 DIGITAL_SIGNATURE (AUTH data = len | AlgorithmIdentifier | signature) or
//   the classic RSA (1) / ECDSA (9,10,11, RFC 4754) methods.
//
// Every verification failure is an AuthenticationError (notify AUTHENTICATION_FAILED); nothing
// else escapes from verify*.
import { createPublicKey, sign as nodeSign, verify as nodeVerify, constants, type KeyObject } from 'node:crypto';
import { concatBytes, toHex } from '../../common/bytes.js';
import { SecretBytes } from '../../common/secret.js';
import { AuthMethod, HashAlgorithm } from '../constants.js';
import { AuthenticationError } from './errors.js';
import type { Prf } from './prf.js';
import { readAll, readTlv } from './der.js';
import { isPssAlgorithmIdentifier, parsePssParams } from './pss.js';
import { CLASSIC_SCHEMES, classicSchemeForMethod, RFC7427_SCHEMES, schemeByAlgorithmIdentifier, type KeyKind, type SignatureScheme } from './signature-schemes.js';
import { icvEqual } from './ciphers.js';

const KEY_PAD = new TextEncoder().encode('Key Pad for IKEv2');

export interface SignedOctetsInput {
  /** Our own first message of the exchange as sent: IKE_SA_INIT request (initiator) or response (responder). */
  readonly realMessage: Uint8Array;
  /** The peer's nonce data (NonceRData for the initiator, NonceIData for the responder). */
  readonly peerNonce: Uint8Array;
  readonly prf: Prf;
  /** SK_pi when computing the initiator's octets, SK_pr for the responder's. */
  readonly skP: SecretBytes;
  /** The ID payload without its generic header: ID Type | RESERVED (3) | Identification Data. */
  readonly idPayloadBody: Uint8Array;
  /** RFC 9242 §3.3.2: IntAuth_iN | IntAuth_rN | IKE_AUTH_MID when IKE_INTERMEDIATE exchanges took place. */
  readonly intAuth?: Uint8Array;
}

/** <SignedOctets> for either side (the caller picks the inputs per role, see SignedOctetsInput). */
export function signedOctets(i: SignedOctetsInput): Uint8Array {
  return concatBytes(i.realMessage, i.peerNonce, i.prf.compute(i.skP, i.idPayloadBody), i.intAuth ?? new Uint8Array(0));
}

/**
 * prf(Shared Secret, "Key Pad for IKEv2") per PSK and PRF: the same for every AUTH computed or
 * checked with that PSK (two per handshake on each side), so it is derived once. Held as long as
 * the PSK's SecretBytes is (weakly keyed): no longer-lived than the secret it stands for. A PSK's
 * bytes are not changed in place (configs are replaced, not edited).
 */
const paddedPsks = new WeakMap<SecretBytes, Map<string, Uint8Array>>();

function paddedPsk(prf: Prf, psk: SecretBytes): Uint8Array {
  let byHash = paddedPsks.get(psk);
  if (byHash === undefined) { byHash = new Map(); paddedPsks.set(psk, byHash); }
  let padded = byHash.get(prf.alg.hash);
  if (padded === undefined) { padded = prf.compute(psk, KEY_PAD); byHash.set(prf.alg.hash, padded); }
  return padded;
}

/** AUTH data for SHARED_KEY_MESSAGE_INTEGRITY_CODE (2). */
export function pskAuthData(prf: Prf, psk: SecretBytes, octets: Uint8Array): Uint8Array {
  return prf.compute(paddedPsk(prf, psk), octets);
}

/** Constant-time check of a received PSK AUTH value. */
export function verifyPskAuth(prf: Prf, psk: SecretBytes, octets: Uint8Array, received: Uint8Array): void {
  if (!icvEqual(pskAuthData(prf, psk, octets), received)) throw new AuthenticationError('PSK AUTH value does not match (wrong pre-shared key?)');
}

function keyKind(key: KeyObject): KeyKind | undefined {
  const t = key.asymmetricKeyType;
  return t === 'ec' || t === 'rsa' || t === 'rsa-pss' || t === 'ed25519' ? t : undefined;
}

function namedCurve(key: KeyObject): string | undefined {
  return key.asymmetricKeyDetails?.namedCurve;
}

function nodeSignOptions(s: SignatureScheme, saltLength?: number): { padding?: number; saltLength?: number; dsaEncoding?: 'der' | 'ieee-p1363' } {
  if (s.padding === 'pss') return { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: saltLength ?? (s.hash === 'sha256' ? 32 : s.hash === 'sha384' ? 48 : 64) };
  if (s.padding === 'pkcs1') return { padding: constants.RSA_PKCS1_PADDING };
  return { dsaEncoding: s.dsaEncoding };
}

/** The AUTH payload's method and data. */
export interface AuthValue { readonly authMethod: number; readonly authData: Uint8Array }

/** Sign <SignedOctets> with `scheme` (see chooseSignatureScheme). */
export function signAuth(scheme: SignatureScheme, privateKey: KeyObject, octets: Uint8Array): AuthValue {
  const kind = keyKind(privateKey);
  if (!kind || !scheme.keyKinds.includes(kind)) throw new AuthenticationError(`${scheme.name} cannot be used with a ${privateKey.asymmetricKeyType ?? 'unknown'} key`);
  if (scheme.curve && namedCurve(privateKey) !== scheme.curve) throw new AuthenticationError(`${scheme.name} needs a ${scheme.curve} key`);
  const sig = new Uint8Array(nodeSign(scheme.hash, octets, { key: privateKey, ...nodeSignOptions(scheme) }));
  if (!scheme.algorithmIdentifier) return { authMethod: scheme.authMethod, authData: sig };
  const algId = scheme.algorithmIdentifier;
  return { authMethod: AuthMethod.DIGITAL_SIGNATURE, authData: concatBytes(new Uint8Array([algId.length]), algId, sig) };
}

export interface VerifyOptions {
  /** RFC 7427 hash IDs we announced in SIGNATURE_HASH_ALGORITHMS; the peer must use one of them. */
  readonly allowedHashes?: readonly number[];
  /** Accept RSA_DIGITAL_SIGNATURE (1), which is PKCS#1 v1.5 over SHA-1 (default: false, RFC 8247 §3). */
  readonly allowSha1Rsa?: boolean;
}

/**
 * RFC 7427 AlgorithmIdentifiers with SHA-1 (RFC 8247 §3: MUST NOT). We never announce SHA-1 in
 * SIGNATURE_HASH_ALGORITHMS, so these are refused by name rather than as "unsupported".
 */
const SHA1_ALGORITHMS: Readonly<Record<string, string>> = {
  '2a864886f70d010105': 'sha1WithRSAEncryption', '2a8648ce3d0401': 'ecdsa-with-SHA1', '2a8648ce380403': 'dsa-with-sha1',
};

function sha1AlgorithmName(algId: Uint8Array): string | undefined {
  try { const o = readAll(readTlv(algId).value)[0]; return o?.tag === 0x06 ? SHA1_ALGORITHMS[toHex(o.value)] : undefined; } catch { return undefined; }
}

/** RSASSA-PSS with parameters other than ours: bounded by parsePssParams, then matched to a scheme. */
function pssScheme(algId: Uint8Array, publicKey: KeyObject): { scheme: SignatureScheme; saltLength: number } | undefined {
  if (!isPssAlgorithmIdentifier(algId)) return undefined;
  const p = parsePssParams(algId, publicKey.asymmetricKeyDetails?.modulusLength);
  const scheme = RFC7427_SCHEMES.find((s) => s.padding === 'pss' && s.hash === p.hash);
  return scheme ? { scheme, saltLength: p.saltLength } : undefined;
}

/** Verify a signature AUTH payload against the peer's public key (from its certificate). */
export function verifySignatureAuth(authMethod: number, authData: Uint8Array, publicKey: KeyObject, octets: Uint8Array, opts: VerifyOptions = {}): SignatureScheme {
  let scheme: SignatureScheme | undefined;
  let signature: Uint8Array;
  let saltLength: number | undefined;
  if (authMethod === AuthMethod.DIGITAL_SIGNATURE) {
    const len = authData[0];
    if (len === undefined || authData.length < 1 + len + 1) throw new AuthenticationError('DIGITAL_SIGNATURE AUTH data is truncated');
    const algId = authData.subarray(1, 1 + len);
    signature = authData.subarray(1 + len);
    const sha1 = sha1AlgorithmName(algId);
    if (sha1) throw new AuthenticationError(`peer signed with ${sha1}: SHA-1 signatures are refused (RFC 8247 §3)`);
    scheme = schemeByAlgorithmIdentifier(algId);
    if (!scheme) {
      const p = pssScheme(algId, publicKey);
      if (p) { scheme = p.scheme; saltLength = p.saltLength; }
    }
    if (!scheme) throw new AuthenticationError(`unsupported signature AlgorithmIdentifier ${Buffer.from(algId).toString('hex')}`);
    if (opts.allowedHashes && !opts.allowedHashes.includes(scheme.hashId))
      throw new AuthenticationError(`peer signed with ${scheme.name}, whose hash we did not announce (RFC 7427 §4)`);
  } else {
    scheme = classicSchemeForMethod(authMethod);
    if (!scheme) throw new AuthenticationError(`AUTH method ${authMethod} is not a supported signature method`);
    if (authMethod === AuthMethod.RSA_DIGITAL_SIGNATURE && opts.allowSha1Rsa !== true)
      throw new AuthenticationError('peer used RSA_DIGITAL_SIGNATURE (1), PKCS#1 v1.5 with SHA-1: refused (RFC 8247 §3; a profile with allowWeak accepts it)');
    signature = authData;
  }
  const kind = keyKind(publicKey);
  if (!kind || !scheme.keyKinds.includes(kind))
    throw new AuthenticationError(`${scheme.name} signature does not fit the peer's ${publicKey.asymmetricKeyType ?? 'unknown'} key`);
  if (scheme.curve && namedCurve(publicKey) !== scheme.curve) throw new AuthenticationError(`AUTH method ${authMethod} requires a ${scheme.curve} key`);
  let ok: boolean;
  try {
    ok = nodeVerify(scheme.hash, octets, { key: publicKey, ...nodeSignOptions(scheme, saltLength) }, signature);
  } catch { ok = false; }
  if (!ok) throw new AuthenticationError(`${scheme.name} signature did not verify`);
  return scheme;
}

/** Public key of a private key, for tests and self-checks. */
export function publicKeyOf(privateKey: KeyObject): KeyObject { return createPublicKey(privateKey); }

// --- SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4) ---------------------------------------------

/** Our default announcement: SHA2-256/384/512 and Identity (for Ed25519). */
export const DEFAULT_SIGNATURE_HASHES: readonly number[] = [HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512, HashAlgorithm.IDENTITY];

/** Notification data: a list of 2-octet hash IDs. */
export function encodeSignatureHashAlgorithms(ids: readonly number[]): Uint8Array {
  const out = new Uint8Array(ids.length * 2);
  ids.forEach((id, i) => { out[2 * i] = id >> 8; out[2 * i + 1] = id & 0xff; });
  return out;
}

/** Parse notification data; an odd length is malformed (unknown IDs are kept, the caller ignores them). */
export function decodeSignatureHashAlgorithms(data: Uint8Array): number[] {
  if (data.length % 2 !== 0) throw new AuthenticationError(`SIGNATURE_HASH_ALGORITHMS data has odd length ${data.length}`);
  const out: number[] = [];
  for (let i = 0; i < data.length; i += 2) out.push((data[i]! << 8) | data[i + 1]!);
  return out;
}

/** Preferred RFC 7427 hash per EC curve (the curve's matching strength, RFC 5656 §6.2.1 style). */
const EC_HASH_PREFERENCE: Readonly<Record<string, readonly string[]>> = {
  prime256v1: ['sha256', 'sha384', 'sha512'],
  secp384r1: ['sha384', 'sha512', 'sha256'],
  secp521r1: ['sha512', 'sha384', 'sha256'],
};

/**
 * Pick how to sign with `privateKey`: an RFC 7427 scheme the peer announced (peerHashes from its
 * SIGNATURE_HASH_ALGORITHMS notify), else the classic method for the key (RFC 7427 §4: without the
 * notify, the peer may not support DIGITAL_SIGNATURE). Ed25519 has no classic method.
 */
export function chooseSignatureScheme(privateKey: KeyObject, peerHashes: readonly number[] | null): SignatureScheme {
  const kind = keyKind(privateKey);
  if (!kind) throw new AuthenticationError(`unsupported private key type ${privateKey.asymmetricKeyType ?? 'unknown'}`);
  if (peerHashes) {
    let candidates = RFC7427_SCHEMES.filter((s) => s.keyKinds.includes(kind) && peerHashes.includes(s.hashId));
    if (kind === 'rsa') candidates = candidates.filter((s) => s.padding === 'pss'); // prefer PSS for RSA
    if (kind === 'ec') {
      const order = EC_HASH_PREFERENCE[namedCurve(privateKey) ?? ''] ?? ['sha256', 'sha384', 'sha512'];
      candidates = [...candidates].sort((a, b) => order.indexOf(a.hash ?? '') - order.indexOf(b.hash ?? ''));
    }
    const first = candidates[0];
    if (first) return first;
  }
  if (kind === 'rsa') return CLASSIC_SCHEMES[0]!;
  if (kind === 'ec') {
    const c = CLASSIC_SCHEMES.find((s) => s.curve === namedCurve(privateKey));
    if (c) return c;
  }
  throw new AuthenticationError(`no signature scheme for a ${kind} key that the peer supports`);
}

/** Make a SecretBytes from a PSK string or bytes (config layer helper). */
export function pskFrom(value: string | Uint8Array): SecretBytes {
  return new SecretBytes(typeof value === 'string' ? new TextEncoder().encode(value) : new Uint8Array(value));
}
