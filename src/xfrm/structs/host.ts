// Host byte order, in one place. Kernel structs on netlink (xfrm_usersa_info's u32/u64 fields,
// nlmsghdr, nlattr) are in the CPU's order, not network order; only fields the kernel marks
// __be16/__be32 (ports, SPIs, addresses) are big-endian. Every struct module reads and writes
// host-order fields through these helpers so a big-endian port would change this file only.
import { endianness } from 'node:os';
import type { Reader, Writer } from '../../common/bytes.js';
import { KipsecError } from '../../common/errors.js';

if (endianness() !== 'LE')
  throw new KipsecError('ERR_XFRM_HOST_ORDER', 'src/xfrm supports little-endian hosts only (x86_64, aarch64)');

export const getU16 = (r: Reader, what?: string): number => r.u16le(what);
export const getU32 = (r: Reader, what?: string): number => r.u32le(what);
export const getI32 = (r: Reader, what?: string): number => r.u32le(what) | 0;
export const getU64 = (r: Reader, what?: string): bigint => r.u64le(what);
export const putU16 = (w: Writer, v: number): Writer => w.u16le(v);
export const putU32 = (w: Writer, v: number): Writer => w.u32le(v >>> 0);
export const putI32 = (w: Writer, v: number): Writer => w.u32le(v >>> 0);
export const putU64 = (w: Writer, v: bigint): Writer => w.u64le(BigInt.asUintN(64, v));
export const setU16At = (w: Writer, at: number, v: number): void => w.setU16le(at, v);
export const setU32At = (w: Writer, at: number, v: number): void => w.setU32le(at, v >>> 0);
