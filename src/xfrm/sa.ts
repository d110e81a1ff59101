// Security associations as the agent describes them ↔ XFRM_MSG_NEWSA payloads.
// Attribute order follows iproute2 (algorithms, ENCAP, REPLAY_ESN_VAL, SA_EXTRA_FLAGS, MARK,
// IF_ID, SET_MARK, SET_MARK_MASK) so requests are byte-identical to `ip xfrm state add`.
import { ConfigError } from '../common/errors.js';
import { SecretBytes } from '../common/secret.js';
import { attr, findAttr, type XfrmAttr } from './attrs.js';
import * as C from './constants.js';
import { addressBytes, addressText, familyOf, ZERO_ADDRESS } from './structs/address.js';
import { LIFETIME_CFG_UNLIMITED, type XfrmLifetimeCfg } from './structs/lifetime-cfg.js';
import { LIFETIME_CUR_ZERO, type XfrmLifetimeCur } from './structs/lifetime-cur.js';
import { freshReplayStateEsn } from './structs/replay-state-esn.js';
import { EMPTY_SELECTOR } from './structs/selector.js';
import { STATS_ZERO, type XfrmStats } from './structs/stats.js';
import type { XfrmUsersaInfo } from './structs/usersa-info.js';
import { decodeSelector, encodeSelector, type TrafficSelector } from './selector.js';

export type IpsecProto = 'esp' | 'ah' | 'comp';
export type SaMode = 'transport' | 'tunnel' | 'beet';

export const PROTO_NUMBER: Readonly<Record<IpsecProto, number>> = { esp: C.IPPROTO_ESP, ah: C.IPPROTO_AH, comp: C.IPPROTO_COMP };
export const MODE_NUMBER: Readonly<Record<SaMode, number>> = { transport: C.XFRM_MODE_TRANSPORT, tunnel: C.XFRM_MODE_TUNNEL, beet: C.XFRM_MODE_BEET };

export function protoName(n: number): IpsecProto | `proto-${number}` {
  for (const [k, v] of Object.entries(PROTO_NUMBER)) if (v === n) return k as IpsecProto;
  return `proto-${n}`;
}
export function modeName(n: number): SaMode | `mode-${number}` {
  for (const [k, v] of Object.entries(MODE_NUMBER)) if (v === n) return k as SaMode;
  return `mode-${n}`;
}

/** AEAD (AES-GCM, ChaCha20-Poly1305): key includes the 4-byte salt (RFC 4106 §8.1, RFC 7634 §2). */
export interface AeadAlg { readonly name: string; readonly key: SecretBytes; readonly icvBits: number }
export interface CryptAlg { readonly name: string; readonly key: SecretBytes }
export interface AuthAlg { readonly name: string; readonly key: SecretBytes; readonly truncBits: number }

/** ESP-in-UDP (RFC 3948); ports as on the wire of the outer UDP header. */
export interface Encap { readonly sport: number; readonly dport: number; readonly oa?: string; readonly type?: number }
export interface Mark { readonly value: number; readonly mask?: number }

/** Limits for one of the two lifetimes; absent = none. */
export interface SaLimits {
  readonly bytes?: bigint;
  readonly packets?: bigint;
  readonly addExpiresSec?: number;
  readonly useExpiresSec?: number;
}

export interface SaSpec {
  readonly src: string;
  readonly dst: string;
  readonly spi: number;
  readonly proto?: IpsecProto;
  readonly mode?: SaMode;
  readonly reqid?: number;
  readonly aead?: AeadAlg;
  readonly crypt?: CryptAlg;
  readonly auth?: AuthAlg;
  readonly encap?: Encap;
  readonly mark?: Mark;
  /** Output mark set on packets after encapsulation (XFRMA_SET_MARK). */
  readonly setMark?: Mark;
  /** XFRM interface id for route-based tunnels (XFRMA_IF_ID). */
  readonly ifId?: number;
  /** Anti-replay window in packets; 0 disables it (outbound SAs). */
  readonly replayWindow?: number;
  /** Extended sequence numbers (RFC 4303 §2.2.1). */
  readonly esn?: boolean;
  /** Extra XFRM_STATE_* flags (ESN is set from `esn`). */
  readonly flags?: number;
  /** XFRM_SA_XFLAG_* bits. */
  readonly extraFlags?: number;
  readonly soft?: SaLimits;
  readonly hard?: SaLimits;
  /** Inner selector; the kernel matches any when absent (tunnel mode). */
  readonly selector?: TrafficSelector;
  /** The ACQUIRE's seq this SA answers, so the kernel releases queued packets. */
  readonly acquireSeq?: number;
}

/** What identifies an SA in the kernel: (dst, spi, proto) plus mark. */
export interface SaId {
  readonly dst: string;
  readonly spi: number;
  readonly proto?: IpsecProto;
  /** Narrows DELSA/GETSA to the SA with this source (XFRMA_SRCADDR). */
  readonly src?: string;
  readonly mark?: Mark;
}

/** An SA read back from the kernel: the spec plus counters. */
export interface SaState extends SaSpec {
  readonly current: XfrmLifetimeCur;
  readonly stats: XfrmStats;
}

function limitsToCfg(soft: SaLimits | undefined, hard: SaLimits | undefined): XfrmLifetimeCfg {
  const b = LIFETIME_CFG_UNLIMITED;
  return {
    soft_byte_limit: soft?.bytes ?? b.soft_byte_limit, hard_byte_limit: hard?.bytes ?? b.hard_byte_limit,
    soft_packet_limit: soft?.packets ?? b.soft_packet_limit, hard_packet_limit: hard?.packets ?? b.hard_packet_limit,
    soft_add_expires_seconds: BigInt(soft?.addExpiresSec ?? 0), hard_add_expires_seconds: BigInt(hard?.addExpiresSec ?? 0),
    soft_use_expires_seconds: BigInt(soft?.useExpiresSec ?? 0), hard_use_expires_seconds: BigInt(hard?.useExpiresSec ?? 0),
  };
}

function cfgToLimits(c: XfrmLifetimeCfg, which: 'soft' | 'hard'): SaLimits | undefined {
  const bytes = which === 'soft' ? c.soft_byte_limit : c.hard_byte_limit;
  const packets = which === 'soft' ? c.soft_packet_limit : c.hard_packet_limit;
  const add = which === 'soft' ? c.soft_add_expires_seconds : c.hard_add_expires_seconds;
  const use = which === 'soft' ? c.soft_use_expires_seconds : c.hard_use_expires_seconds;
  const out: { bytes?: bigint; packets?: bigint; addExpiresSec?: number; useExpiresSec?: number } = {};
  if (bytes !== C.XFRM_INF) out.bytes = bytes;
  if (packets !== C.XFRM_INF) out.packets = packets;
  if (add) out.addExpiresSec = Number(add);
  if (use) out.useExpiresSec = Number(use);
  return Object.keys(out).length ? out : undefined;
}

function checkSpec(s: SaSpec): void {
  if (s.aead && (s.crypt || s.auth)) throw new ConfigError('sa.aead', 'an AEAD SA takes no separate encryption/integrity algorithm');
  if (!Number.isInteger(s.spi) || s.spi < 0 || s.spi > 0xffffffff) throw new ConfigError('sa.spi', `SPI out of range: ${s.spi}`);
  if (familyOf(s.src) !== familyOf(s.dst)) throw new ConfigError('sa', `mixed address families: ${s.src} → ${s.dst}`);
  const w = s.replayWindow ?? 0;
  if (!Number.isInteger(w) || w < 0 || w > 0xffffffff) throw new ConfigError('sa.replayWindow', `bad replay window: ${w}`);
}

/** SaSpec → (xfrm_usersa_info, attributes) for NEWSA/UPDSA. */
export function encodeSa(s: SaSpec): { info: XfrmUsersaInfo; attrs: XfrmAttr[] } {
  checkSpec(s);
  const family = familyOf(s.dst);
  // An ESN SA needs a window of at least 1, outbound too: xfrm_init_replay (net/xfrm/xfrm_replay.c)
  // refuses replay_window 0 with XFRM_STATE_ESN (EINVAL) unless the SA says it is outbound
  // (XFRMA_SA_DIR, Linux 6.10+). An outbound SA checks no sequence numbers, so 1 changes nothing.
  const window = s.esn ? Math.max(1, s.replayWindow ?? 0) : (s.replayWindow ?? 0);
  // Windows beyond the legacy 32-bit bitmap, and every ESN SA, need XFRMA_REPLAY_ESN_VAL; the u8 field is then 0.
  const esnState = s.esn || window > C.XFRM_REPLAY_WINDOW_LEGACY_MAX;
  const info: XfrmUsersaInfo = {
    sel: s.selector ? encodeSelector(s.selector) : EMPTY_SELECTOR,
    id: { daddr: addressBytes(s.dst), spi: s.spi, proto: PROTO_NUMBER[s.proto ?? 'esp'] },
    saddr: addressBytes(s.src),
    lft: limitsToCfg(s.soft, s.hard),
    curlft: LIFETIME_CUR_ZERO,
    stats: STATS_ZERO,
    seq: s.acquireSeq ?? 0,
    reqid: s.reqid ?? 0,
    family,
    mode: MODE_NUMBER[s.mode ?? 'tunnel'],
    replay_window: esnState ? 0 : window,
    flags: (s.flags ?? 0) | (s.esn ? C.XFRM_STATE_ESN : 0),
  };
  const attrs: XfrmAttr[] = [];
  const bits = (k: SecretBytes): number => k.length * 8;
  if (s.aead) attrs.push(attr('XFRMA_ALG_AEAD', { alg_name: s.aead.name, alg_key_len: bits(s.aead.key), alg_icv_len: s.aead.icvBits, alg_key: s.aead.key }));
  if (s.crypt) attrs.push(attr('XFRMA_ALG_CRYPT', { alg_name: s.crypt.name, alg_key_len: bits(s.crypt.key), alg_key: s.crypt.key }));
  if (s.auth) attrs.push(attr('XFRMA_ALG_AUTH_TRUNC', { alg_name: s.auth.name, alg_key_len: bits(s.auth.key), alg_trunc_len: s.auth.truncBits, alg_key: s.auth.key }));
  if (s.encap) attrs.push(attr('XFRMA_ENCAP', {
    encap_type: s.encap.type ?? C.UDP_ENCAP_ESPINUDP, encap_sport: s.encap.sport, encap_dport: s.encap.dport,
    encap_oa: s.encap.oa ? addressBytes(s.encap.oa) : ZERO_ADDRESS,
  }));
  if (esnState) attrs.push(attr('XFRMA_REPLAY_ESN_VAL', freshReplayStateEsn(window)));
  if (s.extraFlags) attrs.push(attr('XFRMA_SA_EXTRA_FLAGS', s.extraFlags));
  if (s.mark) attrs.push(attr('XFRMA_MARK', { v: s.mark.value, m: s.mark.mask ?? 0xffffffff }));
  if (s.ifId !== undefined) attrs.push(attr('XFRMA_IF_ID', s.ifId));
  if (s.setMark) {
    attrs.push(attr('XFRMA_SET_MARK', s.setMark.value));
    if (s.setMark.mask !== undefined) attrs.push(attr('XFRMA_SET_MARK_MASK', s.setMark.mask));
  }
  return { info, attrs };
}

/** (xfrm_usersa_info, attributes) from a NEWSA dump/reply → SaState. */
export function decodeSa(info: XfrmUsersaInfo, attrs: readonly XfrmAttr[]): SaState {
  const fam = info.family;
  const aead = findAttr(attrs, 'XFRMA_ALG_AEAD');
  const crypt = findAttr(attrs, 'XFRMA_ALG_CRYPT');
  const auth = findAttr(attrs, 'XFRMA_ALG_AUTH_TRUNC');
  const encap = findAttr(attrs, 'XFRMA_ENCAP');
  const esn = findAttr(attrs, 'XFRMA_REPLAY_ESN_VAL');
  const mark = findAttr(attrs, 'XFRMA_MARK');
  const setMark = findAttr(attrs, 'XFRMA_SET_MARK');
  const setMarkMask = findAttr(attrs, 'XFRMA_SET_MARK_MASK');
  const ifId = findAttr(attrs, 'XFRMA_IF_ID');
  const extra = findAttr(attrs, 'XFRMA_SA_EXTRA_FLAGS');
  const soft = cfgToLimits(info.lft, 'soft');
  const hard = cfgToLimits(info.lft, 'hard');
  const mode = modeName(info.mode);
  const proto = protoName(info.id.proto);
  const flags = info.flags & ~C.XFRM_STATE_ESN;
  return {
    src: addressText(info.saddr, fam), dst: addressText(info.id.daddr, fam), spi: info.id.spi,
    ...(proto.startsWith('proto-') ? {} : { proto: proto as IpsecProto }),
    ...(mode.startsWith('mode-') ? {} : { mode: mode as SaMode }),
    reqid: info.reqid,
    ...(aead ? { aead: { name: aead.alg_name, key: aead.alg_key, icvBits: aead.alg_icv_len } } : {}),
    ...(crypt ? { crypt: { name: crypt.alg_name, key: crypt.alg_key } } : {}),
    ...(auth ? { auth: { name: auth.alg_name, key: auth.alg_key, truncBits: auth.alg_trunc_len } } : {}),
    ...(encap ? {
      encap: {
        ...(encap.encap_type !== C.UDP_ENCAP_ESPINUDP ? { type: encap.encap_type } : {}),
        sport: encap.encap_sport, dport: encap.encap_dport, oa: addressText(encap.encap_oa, fam),
      },
    } : {}),
    replayWindow: esn ? esn.replay_window : info.replay_window,
    esn: (info.flags & C.XFRM_STATE_ESN) !== 0,
    ...(flags ? { flags } : {}),
    ...(extra ? { extraFlags: extra } : {}),
    ...(mark ? { mark: { value: mark.v, mask: mark.m } } : {}),
    ...(setMark !== undefined ? { setMark: setMarkMask !== undefined ? { value: setMark, mask: setMarkMask } : { value: setMark } } : {}),
    ...(ifId !== undefined ? { ifId } : {}),
    ...(soft ? { soft } : {}),
    ...(hard ? { hard } : {}),
    ...(info.sel.family ? { selector: decodeSelector(info.sel) } : {}),
    current: info.curlft,
    stats: info.stats,
  };
}

export function saIdOf(s: SaSpec): SaId {
  return { dst: s.dst, spi: s.spi, src: s.src, ...(s.proto ? { proto: s.proto } : {}), ...(s.mark ? { mark: s.mark } : {}) };
}

export function saText(id: { src?: string; dst: string; spi: number; proto?: IpsecProto }): string {
  return `${id.proto ?? 'esp'} spi 0x${(id.spi >>> 0).toString(16).padStart(8, '0')} ${id.src ?? '*'} → ${id.dst}`;
}
