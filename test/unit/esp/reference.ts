// An independent ESP reference for the native engine's tests: RFC 4303 packet layout with RFC
// 4106 (AES-GCM-16), RFC 7634 (ChaCha20-Poly1305) and RFC 3602 AES-CBC + RFC 4868 HMAC-SHA2
// through node:crypto, ESN (RFC 4303 §2.2.1) and the receiver's window (Appendix A), written from
// the RFCs and sharing no code with native/esp. Options let a test build packets the engine must
// refuse (bad pad, wrong next header, a flipped ICV bit).
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual, type CipherGCMTypes, type CipherChaCha20Poly1305Types } from 'node:crypto';
import type { EspAlgorithm } from '../../../src/esp/codec.js';

export type RefAlgorithm = EspAlgorithm;

export interface RefSa {
  readonly algorithm: RefAlgorithm;
  /** AEAD: key || salt; AES-CBC: the AES key. */
  readonly key: Uint8Array;
  readonly spi: number;
  /** AES-CBC suites: the HMAC key. */
  readonly integrityKey?: Uint8Array;
  readonly esn?: boolean;
}

const HMAC: Partial<Record<RefAlgorithm, { hash: string; icv: number }>> = {
  'aes-cbc-hmac-sha2-256-128': { hash: 'sha256', icv: 16 },
  'aes-cbc-hmac-sha2-384-192': { hash: 'sha384', icv: 24 },
  'aes-cbc-hmac-sha2-512-256': { hash: 'sha512', icv: 32 },
};

/** IV, ICV and ciphertext alignment of a suite (RFC 4106 §3.1, RFC 7634 §2, RFC 3602 §3, RFC 4868 §2.3). */
export function layout(a: RefAlgorithm): { iv: number; icv: number; block: number } {
  const h = HMAC[a];
  return h ? { iv: 16, icv: h.icv, block: 16 } : { iv: 8, icv: 16, block: 4 };
}

function aeadName(a: RefAlgorithm, keyLen: number): CipherGCMTypes | CipherChaCha20Poly1305Types {
  if (a === 'chacha20-poly1305') return 'chacha20-poly1305';
  return keyLen === 16 ? 'aes-128-gcm' : 'aes-256-gcm';
}

function split(sa: RefSa): { key: Uint8Array; salt: Uint8Array } {
  return { key: sa.key.subarray(0, sa.key.length - 4), salt: sa.key.subarray(sa.key.length - 4) };
}

function be32(n: number): Buffer { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0, 0); return b; }

/** RFC 4106 §5 / RFC 7634 §2.1: SPI || seq, or SPI || seq high || seq low with ESN. */
function aad(sa: RefSa, seq: bigint): Buffer {
  const lo = be32(Number(seq & 0xffff_ffffn));
  return Buffer.concat(sa.esn ? [be32(sa.spi), be32(Number(seq >> 32n)), lo] : [be32(sa.spi), lo]);
}

/** RFC 4303 §3.3.2.2: HMAC over SPI || seq || IV || ciphertext, then the ESN high bits (not sent). */
function icvOf(sa: RefSa, covered: Uint8Array, seq: bigint): Buffer {
  const h = HMAC[sa.algorithm];
  if (!h || !sa.integrityKey) throw new Error(`${sa.algorithm} is not an AES-CBC + HMAC suite with an integrity key`);
  const mac = createHmac(h.hash, sa.integrityKey).update(covered);
  if (sa.esn) mac.update(be32(Number(seq >> 32n)));
  return mac.digest().subarray(0, h.icv);
}

export interface SealOptions {
  /** The full sequence number (64-bit with ESN; the wire carries the low 32 bits). */
  readonly seq: number | bigint;
  /** AEAD default: the 64-bit sequence number, as the engine does; CBC default: random. */
  readonly iv?: Uint8Array;
  readonly nextHeader?: number;
  /** Pad bytes to use instead of 1, 2, 3, … (their count sets the pad length). */
  readonly pad?: Uint8Array;
  readonly flipIcvBit?: boolean;
}

/** RFC 4303 §2: SPI | seq | IV | ciphertext(payload | pad | pad length | next header) | ICV. */
export function sealEsp(sa: RefSa, payload: Uint8Array, o: SealOptions): Buffer {
  const seq = BigInt(o.seq);
  const { iv: ivLen, block } = layout(sa.algorithm);
  const padLen = (block - ((payload.length + 2) % block)) % block;
  const pad = o.pad ?? Uint8Array.from({ length: padLen }, (_, i) => i + 1);
  const nh = o.nextHeader ?? (payload[0]! >> 4 === 6 ? 41 : 4);
  const header = Buffer.concat([be32(sa.spi), be32(Number(seq & 0xffff_ffffn))]);
  const plain = Buffer.concat([payload, pad, Buffer.from([pad.length, nh])]);
  let iv: Buffer, body: Buffer, icv: Buffer;
  if (HMAC[sa.algorithm]) {
    iv = Buffer.from(o.iv ?? randomBytes(ivLen));
    const c = createCipheriv(sa.key.length === 16 ? 'aes-128-cbc' : 'aes-256-cbc', sa.key, iv).setAutoPadding(false);
    body = Buffer.concat([c.update(plain), c.final()]);
    icv = icvOf(sa, Buffer.concat([header, iv, body]), seq);
  } else {
    iv = Buffer.from(o.iv ?? Buffer.concat([be32(Number(seq >> 32n)), be32(Number(seq & 0xffff_ffffn))]));
    const { key, salt } = split(sa);
    const c = createCipheriv(aeadName(sa.algorithm, key.length) as 'aes-128-gcm', key, Buffer.concat([salt, iv]), { authTagLength: 16 });
    c.setAAD(aad(sa, seq));
    body = Buffer.concat([c.update(plain), c.final()]);
    icv = c.getAuthTag();
  }
  if (o.flipIcvBit) icv[0]! ^= 1;
  return Buffer.concat([header, iv, body, icv]);
}

export interface OpenedEsp {
  readonly spi: number;
  readonly seq: number;
  readonly iv: Buffer;
  readonly payload: Buffer;
  readonly pad: Buffer;
  readonly padLength: number;
  readonly nextHeader: number;
}

/** Verify (throws on a bad ICV; for CBC before decrypting), decrypt, split the trailer. seqHi: ESN high bits. */
export function openEsp(sa: RefSa, packet: Uint8Array, seqHi = 0): OpenedEsp {
  const b = Buffer.from(packet);
  const { iv: ivLen, icv: icvLen } = layout(sa.algorithm);
  const seq = (BigInt(seqHi) << 32n) | BigInt(b.readUInt32BE(4));
  const iv = b.subarray(8, 8 + ivLen);
  const body = b.subarray(8 + ivLen, b.length - icvLen);
  const icv = b.subarray(b.length - icvLen);
  let plain: Buffer;
  if (HMAC[sa.algorithm]) {
    if (!timingSafeEqual(icvOf(sa, b.subarray(0, b.length - icvLen), seq), icv)) throw new Error('ICV does not verify');
    const d = createDecipheriv(sa.key.length === 16 ? 'aes-128-cbc' : 'aes-256-cbc', sa.key, iv).setAutoPadding(false);
    plain = Buffer.concat([d.update(body), d.final()]);
  } else {
    const { key, salt } = split(sa);
    const d = createDecipheriv(aeadName(sa.algorithm, key.length) as 'aes-128-gcm', key, Buffer.concat([salt, iv]), { authTagLength: 16 });
    d.setAAD(aad(sa, seq));
    d.setAuthTag(icv);
    plain = Buffer.concat([d.update(body), d.final()]);
  }
  const padLength = plain[plain.length - 2]!;
  const nextHeader = plain[plain.length - 1]!;
  const end = plain.length - 2 - padLength;
  return { spi: b.readUInt32BE(0), seq: b.readUInt32BE(4), iv: Buffer.from(iv), payload: plain.subarray(0, end), pad: plain.subarray(end, end + padLength), padLength, nextHeader };
}

/**
 * The receiver's anti-replay window (RFC 4303 §3.4.3) and ESN inference (Appendix A2.2), kept as
 * a set of accepted numbers rather than a bitmap so it shares no structure with the engine's.
 */
export class RefReplayWindow {
  top = 0n;
  readonly #seen = new Set<bigint>();
  readonly window: number;
  readonly esn: boolean;
  constructor(window: number, esn: boolean) { this.window = window; this.esn = esn; }

  /** The full sequence number of a packet with these low 32 bits, or undefined before the SA's first. */
  infer(seqLo: number): bigint | undefined {
    const lo = BigInt(seqLo >>> 0);
    if (!this.esn) return lo;
    const w = BigInt(this.window), tl = this.top & 0xffff_ffffn, th = this.top >> 32n;
    if (tl >= w - 1n) return lo >= tl - w + 1n ? (th << 32n) | lo : th === 0xffff_ffffn ? undefined : ((th + 1n) << 32n) | lo;
    const bottom = (tl - w + 1n) & 0xffff_ffffn; // Case B: the window reaches into the block before
    if (lo >= bottom) return th === 0n ? undefined : ((th - 1n) << 32n) | lo;
    return (th << 32n) | lo;
  }

  fresh(seq: bigint): boolean {
    if (seq === 0n) return false;
    if (this.window === 0 || seq > this.top) return true;
    return this.top - seq < BigInt(this.window) && !this.#seen.has(seq);
  }

  accept(seq: bigint): void {
    if (seq > this.top) this.top = seq;
    this.#seen.add(seq);
    if (this.#seen.size > 4 * this.window + 64) for (const s of this.#seen) if (this.top - s >= BigInt(this.window)) this.#seen.delete(s);
  }
}

function checksum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** An IPv4/UDP packet (RFC 791, RFC 768) from src to dst with the given payload. */
export function ipv4Udp(src: string, dst: string, payload: Uint8Array, ports: { sport: number; dport: number } = { sport: 40000, dport: 9 }): Buffer {
  const ip = Buffer.alloc(20);
  const total = 20 + 8 + payload.length;
  ip[0] = 0x45; ip.writeUInt16BE(total, 2); ip[8] = 64; ip[9] = 17;
  Buffer.from(src.split('.').map(Number)).copy(ip, 12);
  Buffer.from(dst.split('.').map(Number)).copy(ip, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(ports.sport, 0); udp.writeUInt16BE(ports.dport, 2); udp.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([ip, udp, payload]);
}

/** An IPv6/UDP packet (RFC 8200) — checksum left 0: the engine does not look at it. */
export function ipv6Udp(src: Uint8Array, dst: Uint8Array, payload: Uint8Array): Buffer {
  const ip = Buffer.alloc(40);
  ip[0] = 0x60; ip.writeUInt16BE(8 + payload.length, 4); ip[6] = 17; ip[7] = 64;
  Buffer.from(src).copy(ip, 8); Buffer.from(dst).copy(ip, 24);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(40000, 0); udp.writeUInt16BE(9, 2); udp.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([ip, udp, payload]);
}
