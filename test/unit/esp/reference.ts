// An independent ESP reference for the native engine's tests: RFC 4303 packet layout with RFC
// 4106 (AES-GCM-16) and RFC 7634 (ChaCha20-Poly1305) through node:crypto, written from the RFCs
// and sharing no code with native/esp. Options let a test build packets the engine must refuse
// (bad pad, wrong next header, a flipped ICV bit).
import { createCipheriv, createDecipheriv, type CipherGCMTypes, type CipherChaCha20Poly1305Types } from 'node:crypto';

export type RefAlgorithm = 'aes-gcm-16' | 'chacha20-poly1305';

export interface RefSa { readonly algorithm: RefAlgorithm; readonly key: Uint8Array /* key || salt */; readonly spi: number }

function cipherName(a: RefAlgorithm, keyLen: number): CipherGCMTypes | CipherChaCha20Poly1305Types {
  if (a === 'chacha20-poly1305') return 'chacha20-poly1305';
  return keyLen === 16 ? 'aes-128-gcm' : 'aes-256-gcm';
}

function split(sa: RefSa): { key: Uint8Array; salt: Uint8Array } {
  return { key: sa.key.subarray(0, sa.key.length - 4), salt: sa.key.subarray(sa.key.length - 4) };
}

export interface SealOptions {
  readonly seq: number;
  /** Default: the 64-bit big-endian sequence number, as the engine does. */
  readonly iv?: Uint8Array;
  readonly nextHeader?: number;
  /** Pad bytes to use instead of 1, 2, 3, … (their count sets the pad length). */
  readonly pad?: Uint8Array;
  readonly flipIcvBit?: boolean;
}

/** RFC 4303 §2: SPI | seq | IV | ciphertext(payload | pad | pad length | next header) | ICV. */
export function sealEsp(sa: RefSa, payload: Uint8Array, o: SealOptions): Buffer {
  const { key, salt } = split(sa);
  const iv = o.iv ?? Buffer.from([0, 0, 0, 0, o.seq >>> 24, (o.seq >>> 16) & 255, (o.seq >>> 8) & 255, o.seq & 255]);
  const padLen = (4 - ((payload.length + 2) % 4)) % 4;
  const pad = o.pad ?? Uint8Array.from({ length: padLen }, (_, i) => i + 1);
  const nh = o.nextHeader ?? (payload[0]! >> 4 === 6 ? 41 : 4);
  const header = Buffer.alloc(8);
  header.writeUInt32BE(sa.spi >>> 0, 0);
  header.writeUInt32BE(o.seq >>> 0, 4);
  const plain = Buffer.concat([payload, pad, Buffer.from([pad.length, nh])]);
  const c = createCipheriv(cipherName(sa.algorithm, key.length) as 'aes-128-gcm', key, Buffer.concat([salt, iv]), { authTagLength: 16 });
  c.setAAD(header);
  const body = Buffer.concat([c.update(plain), c.final()]);
  const icv = c.getAuthTag();
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

/** Decrypt and verify (throws on a bad ICV), then split the trailer. */
export function openEsp(sa: RefSa, packet: Uint8Array): OpenedEsp {
  const b = Buffer.from(packet);
  const { key, salt } = split(sa);
  const iv = b.subarray(8, 16);
  const d = createDecipheriv(cipherName(sa.algorithm, key.length) as 'aes-128-gcm', key, Buffer.concat([salt, iv]), { authTagLength: 16 });
  d.setAAD(b.subarray(0, 8));
  d.setAuthTag(b.subarray(b.length - 16));
  const plain = Buffer.concat([d.update(b.subarray(16, b.length - 16)), d.final()]);
  const padLength = plain[plain.length - 2]!;
  const nextHeader = plain[plain.length - 1]!;
  const end = plain.length - 2 - padLength;
  return { spi: b.readUInt32BE(0), seq: b.readUInt32BE(4), iv: Buffer.from(iv), payload: plain.subarray(0, end), pad: plain.subarray(end, end + padLength), padLength, nextHeader };
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
