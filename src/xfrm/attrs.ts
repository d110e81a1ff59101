// XFRM attributes (XFRMA_*) as a typed union. Decoding keeps the kernel's attribute order and
// keeps anything we don't model (or that has trailing bytes we don't understand) as raw bytes,
// so decode → encode reproduces a kernel dump exactly.
import { Reader, Writer } from '../common/bytes.js';
import { putAttrWith, putRawAttr, type NlAttr } from './netlink/attr.js';
import * as C from './constants.js';
import { getAddress, putAddress } from './structs/address.js';
import {
  decodeXfrmAlgo, decodeXfrmAlgoAead, decodeXfrmAlgoAuth, encodeXfrmAlgo, encodeXfrmAlgoAead, encodeXfrmAlgoAuth,
  type XfrmAlgo, type XfrmAlgoAead, type XfrmAlgoAuth,
} from './structs/algo.js';
import { decodeXfrmEncapTmpl, encodeXfrmEncapTmpl, type XfrmEncapTmpl } from './structs/encap-tmpl.js';
import { getU32, getU64, putU32, putU64 } from './structs/host.js';
import { decodeXfrmLifetimeCur, encodeXfrmLifetimeCur, type XfrmLifetimeCur } from './structs/lifetime-cur.js';
import { decodeXfrmMark, encodeXfrmMark, type XfrmMark } from './structs/mark.js';
import { decodeXfrmReplayStateEsn, encodeXfrmReplayStateEsn, type XfrmReplayStateEsn } from './structs/replay-state-esn.js';
import { decodeXfrmReplayState, encodeXfrmReplayState, type XfrmReplayState } from './structs/replay-state.js';
import { decodeXfrmUserTmpl, encodeXfrmUserTmpl, XFRM_USER_TMPL_SIZE, type XfrmUserTmpl } from './structs/user-tmpl.js';
import { decodeXfrmUserpolicyType, encodeXfrmUserpolicyType, type XfrmUserpolicyType } from './structs/userpolicy-type.js';

export type XfrmAttr =
  | { readonly kind: 'XFRMA_ALG_AEAD'; readonly value: XfrmAlgoAead }
  | { readonly kind: 'XFRMA_ALG_CRYPT'; readonly value: XfrmAlgo }
  | { readonly kind: 'XFRMA_ALG_AUTH'; readonly value: XfrmAlgo }
  | { readonly kind: 'XFRMA_ALG_AUTH_TRUNC'; readonly value: XfrmAlgoAuth }
  | { readonly kind: 'XFRMA_ENCAP'; readonly value: XfrmEncapTmpl }
  | { readonly kind: 'XFRMA_TMPL'; readonly value: readonly XfrmUserTmpl[] }
  | { readonly kind: 'XFRMA_MARK'; readonly value: XfrmMark }
  | { readonly kind: 'XFRMA_SET_MARK'; readonly value: number }
  | { readonly kind: 'XFRMA_SET_MARK_MASK'; readonly value: number }
  | { readonly kind: 'XFRMA_IF_ID'; readonly value: number }
  | { readonly kind: 'XFRMA_SA_EXTRA_FLAGS'; readonly value: number }
  | { readonly kind: 'XFRMA_TFCPAD'; readonly value: number }
  | { readonly kind: 'XFRMA_REPLAY_THRESH'; readonly value: number }
  | { readonly kind: 'XFRMA_ETIMER_THRESH'; readonly value: number }
  | { readonly kind: 'XFRMA_REPLAY_ESN_VAL'; readonly value: XfrmReplayStateEsn }
  | { readonly kind: 'XFRMA_REPLAY_VAL'; readonly value: XfrmReplayState }
  | { readonly kind: 'XFRMA_LTIME_VAL'; readonly value: XfrmLifetimeCur }
  | { readonly kind: 'XFRMA_SRCADDR'; readonly value: Uint8Array }
  | { readonly kind: 'XFRMA_LASTUSED'; readonly value: bigint }
  | { readonly kind: 'XFRMA_POLICY_TYPE'; readonly value: XfrmUserpolicyType }
  | { readonly kind: 'raw'; readonly attr: NlAttr };

export type XfrmAttrKind = XfrmAttr['kind'];
export type XfrmAttrOf<K extends XfrmAttrKind> = Extract<XfrmAttr, { kind: K }>;

interface Codec { readonly type: number; decode(r: Reader): unknown; encode(w: Writer, v: never): void }

const u32: Pick<Codec, 'decode' | 'encode'> = { decode: (r) => getU32(r), encode: (w, v: number) => { putU32(w, v); } };

const CODECS: Readonly<Record<Exclude<XfrmAttrKind, 'raw'>, Codec>> = {
  XFRMA_ALG_AEAD: { type: C.XFRMA_ALG_AEAD, decode: decodeXfrmAlgoAead, encode: encodeXfrmAlgoAead },
  XFRMA_ALG_CRYPT: { type: C.XFRMA_ALG_CRYPT, decode: decodeXfrmAlgo, encode: encodeXfrmAlgo },
  XFRMA_ALG_AUTH: { type: C.XFRMA_ALG_AUTH, decode: decodeXfrmAlgo, encode: encodeXfrmAlgo },
  XFRMA_ALG_AUTH_TRUNC: { type: C.XFRMA_ALG_AUTH_TRUNC, decode: decodeXfrmAlgoAuth, encode: encodeXfrmAlgoAuth },
  XFRMA_ENCAP: { type: C.XFRMA_ENCAP, decode: decodeXfrmEncapTmpl, encode: encodeXfrmEncapTmpl },
  XFRMA_TMPL: {
    type: C.XFRMA_TMPL,
    decode: (r) => { const out: XfrmUserTmpl[] = []; while (r.remaining >= XFRM_USER_TMPL_SIZE) out.push(decodeXfrmUserTmpl(r)); return out; },
    encode: (w, v: readonly XfrmUserTmpl[]) => { for (const t of v) encodeXfrmUserTmpl(w, t); },
  },
  XFRMA_MARK: { type: C.XFRMA_MARK, decode: decodeXfrmMark, encode: encodeXfrmMark },
  XFRMA_SET_MARK: { type: C.XFRMA_SET_MARK, ...u32 },
  XFRMA_SET_MARK_MASK: { type: C.XFRMA_SET_MARK_MASK, ...u32 },
  XFRMA_IF_ID: { type: C.XFRMA_IF_ID, ...u32 },
  XFRMA_SA_EXTRA_FLAGS: { type: C.XFRMA_SA_EXTRA_FLAGS, ...u32 },
  XFRMA_TFCPAD: { type: C.XFRMA_TFCPAD, ...u32 },
  XFRMA_REPLAY_THRESH: { type: C.XFRMA_REPLAY_THRESH, ...u32 },
  XFRMA_ETIMER_THRESH: { type: C.XFRMA_ETIMER_THRESH, ...u32 },
  XFRMA_REPLAY_ESN_VAL: { type: C.XFRMA_REPLAY_ESN_VAL, decode: decodeXfrmReplayStateEsn, encode: encodeXfrmReplayStateEsn },
  XFRMA_REPLAY_VAL: { type: C.XFRMA_REPLAY_VAL, decode: decodeXfrmReplayState, encode: encodeXfrmReplayState },
  XFRMA_LTIME_VAL: { type: C.XFRMA_LTIME_VAL, decode: decodeXfrmLifetimeCur, encode: encodeXfrmLifetimeCur },
  XFRMA_SRCADDR: { type: C.XFRMA_SRCADDR, decode: (r) => getAddress(r), encode: (w, v: Uint8Array) => { putAddress(w, v); } },
  XFRMA_LASTUSED: { type: C.XFRMA_LASTUSED, decode: (r) => getU64(r), encode: (w, v: bigint) => { putU64(w, v); } },
  XFRMA_POLICY_TYPE: { type: C.XFRMA_POLICY_TYPE, decode: decodeXfrmUserpolicyType, encode: encodeXfrmUserpolicyType },
};

const BY_TYPE = new Map<number, Exclude<XfrmAttrKind, 'raw'>>(
  Object.entries(CODECS).map(([k, c]) => [c.type, k as Exclude<XfrmAttrKind, 'raw'>]),
);

export function decodeXfrmAttr(a: NlAttr): XfrmAttr {
  const kind = BY_TYPE.get(a.type);
  if (!kind || a.flags) return { kind: 'raw', attr: a };
  const r = new Reader(a.data);
  try {
    const value = CODECS[kind].decode(r);
    // Trailing bytes mean a newer kernel struct than ours: keep the original to stay exact.
    if (!r.done) return { kind: 'raw', attr: a };
    return { kind, value } as XfrmAttr;
  } catch {
    return { kind: 'raw', attr: a };
  }
}

export function encodeXfrmAttr(w: Writer, a: XfrmAttr): void {
  if (a.kind === 'raw') { putRawAttr(w, a.attr); return; }
  const c = CODECS[a.kind];
  putAttrWith(w, c.type, (b) => { (c.encode as (w: Writer, v: unknown) => void)(b, a.value); });
}

/** The first attribute of a kind, typed. */
type Valued = Exclude<XfrmAttr, { kind: 'raw' }>;
export type XfrmAttrValues = { [A in Valued as A['kind']]: A['value'] };
export function findAttr<K extends keyof XfrmAttrValues>(attrs: readonly XfrmAttr[], kind: K): XfrmAttrValues[K] | undefined {
  for (const a of attrs) if (a.kind === kind) return (a as unknown as { value: XfrmAttrValues[K] }).value;
  return undefined;
}

/** Build a typed attribute. */
export function attr<K extends keyof XfrmAttrValues>(kind: K, value: XfrmAttrValues[K]): XfrmAttr {
  return { kind, value } as unknown as XfrmAttr;
}
