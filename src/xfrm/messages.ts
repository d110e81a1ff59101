// XFRM message bodies: which kernel struct heads each message type, then XFRMA_* attributes
// from NLMSG_ALIGN(sizeof(struct)). Pure encode/decode of payloads (no nlmsghdr), so golden
// tests can compare bytes and the client can build requests.
import { Reader, Writer } from '../common/bytes.js';
import { ParseError } from '../common/errors.js';
import { decodeXfrmAttr, encodeXfrmAttr, type XfrmAttr } from './attrs.js';
import { parseAttrs } from './netlink/attr.js';
import { nlAlign } from './netlink/constants.js';
import * as C from './constants.js';
import { decodeXfrmAeventId, encodeXfrmAeventId, XFRM_AEVENT_ID_SIZE, type XfrmAeventId } from './structs/aevent-id.js';
import { decodeXfrmUserAcquire, encodeXfrmUserAcquire, XFRM_USER_ACQUIRE_SIZE, type XfrmUserAcquire } from './structs/user-acquire.js';
import { decodeXfrmUserExpire, encodeXfrmUserExpire, XFRM_USER_EXPIRE_SIZE, type XfrmUserExpire } from './structs/user-expire.js';
import { decodeXfrmUserMapping, encodeXfrmUserMapping, XFRM_USER_MAPPING_SIZE, type XfrmUserMapping } from './structs/user-mapping.js';
import { decodeXfrmUserPolexpire, encodeXfrmUserPolexpire, XFRM_USER_POLEXPIRE_SIZE, type XfrmUserPolexpire } from './structs/user-polexpire.js';
import { decodeXfrmUserpolicyId, encodeXfrmUserpolicyId, XFRM_USERPOLICY_ID_SIZE, type XfrmUserpolicyId } from './structs/userpolicy-id.js';
import { decodeXfrmUserpolicyInfo, encodeXfrmUserpolicyInfo, XFRM_USERPOLICY_INFO_SIZE, type XfrmUserpolicyInfo } from './structs/userpolicy-info.js';
import { decodeXfrmUsersaFlush, encodeXfrmUsersaFlush, XFRM_USERSA_FLUSH_SIZE, type XfrmUsersaFlush } from './structs/usersa-flush.js';
import { decodeXfrmUsersaId, encodeXfrmUsersaId, XFRM_USERSA_ID_SIZE, type XfrmUsersaId } from './structs/usersa-id.js';
import { decodeXfrmUsersaInfo, encodeXfrmUsersaInfo, XFRM_USERSA_INFO_SIZE, type XfrmUsersaInfo } from './structs/usersa-info.js';
import { decodeXfrmUserspiInfo, encodeXfrmUserspiInfo, XFRM_USERSPI_INFO_SIZE, type XfrmUserspiInfo } from './structs/userspi-info.js';

/** A decoded XFRM message: the head struct (tagged by its kernel name) plus attributes in order. */
export type XfrmBody =
  | { readonly struct: 'xfrm_usersa_info'; readonly value: XfrmUsersaInfo }
  | { readonly struct: 'xfrm_usersa_id'; readonly value: XfrmUsersaId }
  | { readonly struct: 'xfrm_userpolicy_info'; readonly value: XfrmUserpolicyInfo }
  | { readonly struct: 'xfrm_userpolicy_id'; readonly value: XfrmUserpolicyId }
  | { readonly struct: 'xfrm_userspi_info'; readonly value: XfrmUserspiInfo }
  | { readonly struct: 'xfrm_user_expire'; readonly value: XfrmUserExpire }
  | { readonly struct: 'xfrm_user_polexpire'; readonly value: XfrmUserPolexpire }
  | { readonly struct: 'xfrm_user_acquire'; readonly value: XfrmUserAcquire }
  | { readonly struct: 'xfrm_aevent_id'; readonly value: XfrmAeventId }
  | { readonly struct: 'xfrm_usersa_flush'; readonly value: XfrmUsersaFlush }
  | { readonly struct: 'xfrm_user_mapping'; readonly value: XfrmUserMapping }
  | { readonly struct: 'none' };

export interface XfrmMessage { readonly type: number; readonly body: XfrmBody; readonly attrs: readonly XfrmAttr[] }

type StructName = Exclude<XfrmBody['struct'], 'none'>;
interface StructCodec { readonly size: number; decode(r: Reader): unknown; encode(w: Writer, v: never): void }

const STRUCTS: Readonly<Record<StructName, StructCodec>> = {
  xfrm_usersa_info: { size: XFRM_USERSA_INFO_SIZE, decode: decodeXfrmUsersaInfo, encode: encodeXfrmUsersaInfo },
  xfrm_usersa_id: { size: XFRM_USERSA_ID_SIZE, decode: decodeXfrmUsersaId, encode: encodeXfrmUsersaId },
  xfrm_userpolicy_info: { size: XFRM_USERPOLICY_INFO_SIZE, decode: decodeXfrmUserpolicyInfo, encode: encodeXfrmUserpolicyInfo },
  xfrm_userpolicy_id: { size: XFRM_USERPOLICY_ID_SIZE, decode: decodeXfrmUserpolicyId, encode: encodeXfrmUserpolicyId },
  xfrm_userspi_info: { size: XFRM_USERSPI_INFO_SIZE, decode: decodeXfrmUserspiInfo, encode: encodeXfrmUserspiInfo },
  xfrm_user_expire: { size: XFRM_USER_EXPIRE_SIZE, decode: decodeXfrmUserExpire, encode: encodeXfrmUserExpire },
  xfrm_user_polexpire: { size: XFRM_USER_POLEXPIRE_SIZE, decode: decodeXfrmUserPolexpire, encode: encodeXfrmUserPolexpire },
  xfrm_user_acquire: { size: XFRM_USER_ACQUIRE_SIZE, decode: decodeXfrmUserAcquire, encode: encodeXfrmUserAcquire },
  xfrm_aevent_id: { size: XFRM_AEVENT_ID_SIZE, decode: decodeXfrmAeventId, encode: encodeXfrmAeventId },
  xfrm_usersa_flush: { size: XFRM_USERSA_FLUSH_SIZE, decode: decodeXfrmUsersaFlush, encode: encodeXfrmUsersaFlush },
  xfrm_user_mapping: { size: XFRM_USER_MAPPING_SIZE, decode: decodeXfrmUserMapping, encode: encodeXfrmUserMapping },
};

/** Which struct heads a message of this type (xfrm_user.c's xfrm_msg_min table). */
export function structFor(type: number): XfrmBody['struct'] {
  switch (type) {
    case C.XFRM_MSG_NEWSA: case C.XFRM_MSG_UPDSA: return 'xfrm_usersa_info';
    case C.XFRM_MSG_DELSA: case C.XFRM_MSG_GETSA: return 'xfrm_usersa_id';
    case C.XFRM_MSG_NEWPOLICY: case C.XFRM_MSG_UPDPOLICY: return 'xfrm_userpolicy_info';
    case C.XFRM_MSG_DELPOLICY: case C.XFRM_MSG_GETPOLICY: return 'xfrm_userpolicy_id';
    case C.XFRM_MSG_ALLOCSPI: return 'xfrm_userspi_info';
    case C.XFRM_MSG_EXPIRE: return 'xfrm_user_expire';
    case C.XFRM_MSG_POLEXPIRE: return 'xfrm_user_polexpire';
    case C.XFRM_MSG_ACQUIRE: return 'xfrm_user_acquire';
    case C.XFRM_MSG_NEWAE: case C.XFRM_MSG_GETAE: return 'xfrm_aevent_id';
    case C.XFRM_MSG_FLUSHSA: return 'xfrm_usersa_flush';
    case C.XFRM_MSG_MAPPING: return 'xfrm_user_mapping';
    default: return 'none';
  }
}

/**
 * Decode a payload. A GET/DEL of a policy dumps back as NEWPOLICY-shaped, and a dump request
 * has an empty body, so a payload shorter than its struct (requests from `ip xfrm … list`)
 * decodes as struct 'none' with the bytes kept as attributes-free raw.
 */
export function decodeXfrmMessage(type: number, payload: Uint8Array): XfrmMessage {
  const name = structFor(type);
  if (name === 'none') return { type, body: { struct: 'none' }, attrs: parseAttrs(payload).map(decodeXfrmAttr) };
  const codec = STRUCTS[name];
  if (payload.length < codec.size)
    throw new ParseError('ERR_XFRM_SHORT', `${name} needs ${codec.size} bytes, message has ${payload.length}`, 0);
  const value = codec.decode(new Reader(payload, 0, codec.size));
  const attrStart = nlAlign(codec.size);
  const attrs = payload.length > attrStart ? parseAttrs(payload.subarray(attrStart), attrStart).map(decodeXfrmAttr) : [];
  return { type, body: { struct: name, value } as XfrmBody, attrs };
}

/** Write a payload (struct, alignment padding, attributes) into a message body writer. */
export function encodeXfrmPayload(w: Writer, body: XfrmBody, attrs: readonly XfrmAttr[]): void {
  if (body.struct !== 'none') {
    const start = w.length;
    (STRUCTS[body.struct].encode as (w: Writer, v: unknown) => void)(w, body.value);
    const n = w.length - start;
    if (attrs.length) w.zeros(nlAlign(n) - n);
  }
  for (const a of attrs) encodeXfrmAttr(w, a);
}

export function encodeXfrmPayloadBytes(body: XfrmBody, attrs: readonly XfrmAttr[]): Uint8Array {
  const w = new Writer(512);
  encodeXfrmPayload(w, body, attrs);
  return w.finish();
}
