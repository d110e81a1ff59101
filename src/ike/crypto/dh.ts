// Key exchange for IKE_SA_INIT and CREATE_CHILD_SA (RFC 7296 §1.2, §3.4) over node:crypto:
//   MODP 14/15/16 (RFC 3526; 1/2/5 only with allowWeak) — public value and g^ir are padded with
//     leading zeros to the prime's length; peer values must satisfy 1 < y < p-1 (RFC 8247 §2.4,
//     NIST SP 800-56A 5.6.2.3.1 partial validation).
//   ECP 19/20/21 (RFC 5903 §7) — KE data is x | y without the SEC1 0x04 prefix; g^ir is the
//     x coordinate only; peer points must have the right length and lie on the curve (RFC 5903 §7
//     / RFC 6989 §2.3: the curves have cofactor 1, so on-curve is the whole check).
//   Curve25519 31 (RFC 8031) — 32-octet u-coordinates; an all-zero shared secret is refused (§2).
import { createDiffieHellman, createDiffieHellmanGroup, createECDH, createPrivateKey, createPublicKey, diffieHellman, type DiffieHellman, type ECDH, type KeyObject } from 'node:crypto';
import { SecretBytes } from '../../common/secret.js';
import { cryptoRandom, type Random } from '../../common/time.js';
import { concatBytes } from '../../common/bytes.js';
import { DhId } from '../constants.js';
import { dhGroupInfo, type DhGroupInfo } from './algorithms.js';
import { InvalidKeyExchangeError } from './errors.js';

/** Our half of one Diffie-Hellman exchange. Use it once; derive, then drop it. */
export interface KeyShare {
  readonly group: number;
  /** Key Exchange Data for our KE payload. */
  readonly publicValue: Uint8Array;
  /** g^ir for the peer's KE data; throws InvalidKeyExchangeError for an invalid public value. */
  computeSharedSecret(peerPublicValue: Uint8Array): SecretBytes;
  /**
   * The private value, for keyShareFromPrivate: a restarted daemon finishes an exchange that was in
   * flight when it stopped (src/ike/sa/checkpoint.ts). Key material: stays inside SecretBytes.
   */
  exportPrivate(): SecretBytes;
}

export interface KeyShareOptions {
  /** Randomness for the private key (tests pass SeededRandom); defaults to node's CSPRNG. */
  readonly random?: Random;
  /** Permit MODP 1/2/5 (RFC 8247 MUST NOT / SHOULD NOT). */
  readonly allowWeak?: boolean;
}

/** Create a fresh key share for `group` (a DhId value). */
export function createKeyShare(group: number, opts: KeyShareOptions = {}): KeyShare {
  const info = dhGroupInfo(group, opts.allowWeak ?? false);
  const random = opts.random ?? cryptoRandom;
  switch (info.family) {
    case 'modp': return modpShare(info, (n) => random.bytes(n));
    case 'ecp': return ecpShare(info, (n) => random.bytes(n));
    case 'curve25519': return x25519Share(random.bytes(32));
  }
}

/** Key share from a fixed private value (RFC test vectors); MODP takes the exponent bytes. */
export function keyShareFromPrivate(group: number, privateKey: Uint8Array, opts: { allowWeak?: boolean } = {}): KeyShare {
  const info = dhGroupInfo(group, opts.allowWeak ?? false);
  switch (info.family) {
    case 'modp': return modpShare(info, () => privateKey);
    case 'ecp': return ecpShare(info, () => privateKey, true);
    case 'curve25519': return x25519Share(privateKey);
  }
}

/**
 * A private value for keyShareFromPrivate(group, …), drawn as createKeyShare draws it: the
 * exponent for MODP, a scalar for ECP (P-521's top 7 bits cleared), 32 octets for Curve25519.
 * Lets the caller's Random decide a key that another thread computes with (crypto/pool.ts).
 */
export function drawPrivateValue(group: number, random: Random = cryptoRandom, allowWeak = false): Uint8Array {
  const info = dhGroupInfo(group, allowWeak);
  switch (info.family) {
    case 'modp': {
      let x = random.bytes(MODP_EXPONENT_BYTES[info.id] ?? 32);
      for (let i = 0; i < 8 && toBig(x) < 2n; i++) x = random.bytes(x.length);
      return x;
    }
    case 'ecp': {
      const c = curveOf(info.id);
      const d = random.bytes(c.coordLen);
      if (c.coordLen === 66) d[0] = (d[0] ?? 0) & 0x01;
      return d;
    }
    case 'curve25519': return random.bytes(32);
  }
}

/** Expected KE payload data length for a group (§3.4: a mismatch is INVALID_SYNTAX). */
export function keyExchangeLength(group: number, allowWeak = false): number {
  return dhGroupInfo(group, allowWeak).publicLength;
}

/** Validate a peer's KE data without computing anything (e.g. before queuing the work). */
export function validatePeerPublicValue(group: number, value: Uint8Array, allowWeak = false): void {
  const info = dhGroupInfo(group, allowWeak);
  if (value.length !== info.publicLength)
    throw new InvalidKeyExchangeError(group, `public value is ${value.length} octets, want ${info.publicLength}`);
  if (info.family === 'modp') checkModpRange(info, value);
  else if (info.family === 'ecp') checkOnCurve(info, value);
}

function toBig(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt('0x' + Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex'));
}

function leftPad(b: Uint8Array, len: number): Uint8Array {
  if (b.length === len) return new Uint8Array(b);
  const out = new Uint8Array(len);
  out.set(b, len - b.length);
  return out;
}

// --- MODP ---------------------------------------------------------------------------------

/** node's built-in groups are the RFC 2409 / RFC 3526 primes (verified in the vector test). */
const MODP_NODE_NAME: Readonly<Record<number, string>> = {
  [DhId.MODP_768]: 'modp1', [DhId.MODP_1024]: 'modp2', [DhId.MODP_1536]: 'modp5',
  [DhId.MODP_2048]: 'modp14', [DhId.MODP_3072]: 'modp15', [DhId.MODP_4096]: 'modp16',
};

/**
 * Private exponent length in octets: twice the group's symmetric strength (RFC 3526 §8 table,
 * upper estimate), which keeps exponentiation cheap without weakening the group.
 */
const MODP_EXPONENT_BYTES: Readonly<Record<number, number>> = {
  [DhId.MODP_768]: 32, [DhId.MODP_1024]: 32, [DhId.MODP_1536]: 32,
  [DhId.MODP_2048]: 40, [DhId.MODP_3072]: 54, [DhId.MODP_4096]: 64,
};

const primeCache = new Map<number, { p: Buffer; pBig: bigint }>();

/** The group's prime p (RFC 3526), as node:crypto knows it. */
export function modpPrime(group: number): Uint8Array {
  return new Uint8Array(modpParams(group).p);
}

function modpParams(group: number): { p: Buffer; pBig: bigint } {
  let c = primeCache.get(group);
  if (!c) {
    const name = MODP_NODE_NAME[group];
    if (!name) throw new InvalidKeyExchangeError(group, 'not a MODP group');
    const p = createDiffieHellmanGroup(name).getPrime();
    c = { p, pBig: toBig(p) };
    primeCache.set(group, c);
  }
  return c;
}

function checkModpRange(info: DhGroupInfo, y: Uint8Array): void {
  const { pBig } = modpParams(info.id);
  const v = toBig(y);
  if (v <= 1n || v >= pBig - 1n) throw new InvalidKeyExchangeError(info.id, 'public value out of range (need 1 < y < p-1)');
}

function modpShare(info: DhGroupInfo, draw: (n: number) => Uint8Array): KeyShare {
  const { p } = modpParams(info.id);
  const dh: DiffieHellman = createDiffieHellman(p, Buffer.from([2]));
  let x = draw(MODP_EXPONENT_BYTES[info.id] ?? 32);
  // An exponent of 0 or 1 would reveal itself in the public value; redraw (vanishingly rare).
  for (let i = 0; i < 8 && toBig(x) < 2n; i++) x = draw(x.length);
  dh.setPrivateKey(Buffer.from(x));
  dh.generateKeys();
  const publicValue = leftPad(dh.getPublicKey(), info.publicLength);
  return {
    group: info.id,
    publicValue,
    exportPrivate: () => new SecretBytes(new Uint8Array(x)),
    computeSharedSecret(peer) {
      validatePeerPublicValue(info.id, peer, true);
      const s = dh.computeSecret(Buffer.from(peer.buffer, peer.byteOffset, peer.byteLength));
      // §2.14: g^ir is padded with zeros to the length of the modulus.
      const out = leftPad(s, info.publicLength);
      s.fill(0);
      return new SecretBytes(out);
    },
  };
}

// --- ECP ----------------------------------------------------------------------------------

interface Curve { readonly nodeName: string; readonly coordLen: number; readonly p: bigint; readonly b: bigint }

/** Short Weierstrass curves with a = -3 (FIPS 186-4 D.1.2): y^2 = x^3 - 3x + b mod p. */
const CURVES: Readonly<Record<number, Curve>> = {
  [DhId.ECP_256]: {
    nodeName: 'prime256v1', coordLen: 32,
    p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
    b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
  },
  [DhId.ECP_384]: {
    nodeName: 'secp384r1', coordLen: 48,
    p: (1n << 384n) - (1n << 128n) - (1n << 96n) + (1n << 32n) - 1n,
    b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
  },
  [DhId.ECP_521]: {
    nodeName: 'secp521r1', coordLen: 66,
    p: (1n << 521n) - 1n,
    b: 0x0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00n,
  },
};

function curveOf(group: number): Curve {
  const c = CURVES[group];
  if (!c) throw new InvalidKeyExchangeError(group, 'not an ECP group');
  return c;
}

function checkOnCurve(info: DhGroupInfo, xy: Uint8Array): void {
  const c = curveOf(info.id);
  const x = toBig(xy.subarray(0, c.coordLen));
  const y = toBig(xy.subarray(c.coordLen));
  if (x >= c.p || y >= c.p) throw new InvalidKeyExchangeError(info.id, 'point coordinate not reduced mod p');
  const lhs = (y * y) % c.p;
  const rhs = (((x * x % c.p) * x - 3n * x + c.b) % c.p + c.p) % c.p;
  if (lhs !== rhs) throw new InvalidKeyExchangeError(info.id, 'point is not on the curve');
}

function ecpShare(info: DhGroupInfo, draw: (n: number) => Uint8Array, fixed = false): KeyShare {
  const c = curveOf(info.id);
  const ecdh: ECDH = createECDH(c.nodeName);
  // Rejection sampling: node refuses scalars that are 0 or >= the group order.
  for (let attempt = 0; ; attempt++) {
    const d = draw(c.coordLen);
    if (c.coordLen === 66 && !fixed) d[0] = (d[0] ?? 0) & 0x01; // P-521 scalars are 521 bits
    try { ecdh.setPrivateKey(Buffer.from(d)); break; } catch (e) {
      if (fixed || attempt > 64) throw new InvalidKeyExchangeError(info.id, `invalid private scalar (${(e as Error).message})`);
    }
  }
  const pub = ecdh.getPublicKey(); // 0x04 | x | y
  const publicValue = new Uint8Array(pub.subarray(1));
  return {
    group: info.id,
    publicValue,
    exportPrivate: () => new SecretBytes(leftPad(ecdh.getPrivateKey(), c.coordLen)),
    computeSharedSecret(peer) {
      validatePeerPublicValue(info.id, peer);
      let s: Buffer;
      try {
        s = ecdh.computeSecret(Buffer.from(concatBytes(new Uint8Array([4]), peer)));
      } catch (e) {
        throw new InvalidKeyExchangeError(info.id, `peer point rejected (${(e as Error).message})`);
      }
      const out = leftPad(s, c.coordLen);
      s.fill(0);
      return new SecretBytes(out);
    },
  };
}

// --- Curve25519 ---------------------------------------------------------------------------

// Raw 32-octet keys enter node's KeyObject API as JWK (RFC 8037 OKP): node up to 24.21 builds
// X25519 keys from the raw "d" (EVP_PKEY_new_raw_private_key) and ignores "x" for private keys,
// so a placeholder is passed and the real public value is read back from the key. This path is
// ~25x faster than importing PKCS#8 DER, whose OpenSSL 3.0 decoder dominates the cost otherwise.
// Node 24.22 checks "x" against "d" ("Invalid JWK OKP key"): there the key goes in as PKCS#8
// (RFC 8410 §7), decided once per process.
const B64U_ZERO32 = Buffer.alloc(32).toString('base64url');
const b64u = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
/** PKCS#8 OneAsymmetricKey for id-X25519 (1.3.101.110) up to the 32-octet CurvePrivateKey (RFC 8410 §7). */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
let x25519JwkPlaceholder = true;

function x25519PrivateKey(priv: Uint8Array): KeyObject {
  if (x25519JwkPlaceholder) {
    try { return createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64u(priv), x: B64U_ZERO32 }, format: 'jwk' }); } catch { x25519JwkPlaceholder = false; }
  }
  return createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, priv]), format: 'der', type: 'pkcs8' });
}

function x25519Share(priv: Uint8Array): KeyShare {
  if (priv.length !== 32) throw new InvalidKeyExchangeError(DhId.CURVE25519, `private key is ${priv.length} octets, want 32`);
  const privateKey = x25519PrivateKey(priv);
  const publicValue = new Uint8Array(Buffer.from(createPublicKey(privateKey).export({ format: 'jwk' }).x ?? '', 'base64url'));
  const own = new Uint8Array(priv);
  return {
    group: DhId.CURVE25519,
    publicValue,
    exportPrivate: () => new SecretBytes(new Uint8Array(own)),
    computeSharedSecret(peer) {
      validatePeerPublicValue(DhId.CURVE25519, peer);
      let s: Buffer;
      try {
        const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64u(peer) }, format: 'jwk' });
        s = diffieHellman({ privateKey, publicKey });
      } catch {
        // OpenSSL fails the derivation exactly when the result is all-zero (low-order point).
        throw new InvalidKeyExchangeError(DhId.CURVE25519, 'shared secret is all-zero (low-order public value, RFC 8031 §2)');
      }
      if (s.every((b) => b === 0)) throw new InvalidKeyExchangeError(DhId.CURVE25519, 'shared secret is all-zero (RFC 8031 §2)');
      const out = new Uint8Array(s);
      s.fill(0);
      return new SecretBytes(out);
    },
  };
}
