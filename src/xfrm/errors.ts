// Typed XFRM errors: the kernel's errno, the operation, and the object it was about (SA by
// src/dst/spi/proto, policy by selector/dir), with a fixed code per failure class.
import { KipsecError } from '../common/errors.js';
import { NetlinkErrnoError } from './netlink/errors.js';
import { policyText, type PolicyDir } from './policy.js';
import { saText, type IpsecProto } from './sa.js';
import type { TrafficSelector } from './selector.js';

export type XfrmTarget =
  | { readonly kind: 'sa'; readonly src?: string; readonly dst: string; readonly spi: number; readonly proto?: IpsecProto }
  | { readonly kind: 'policy'; readonly selector: TrafficSelector; readonly dir: PolicyDir }
  | { readonly kind: 'other'; readonly text: string };

export function targetText(t: XfrmTarget): string {
  if (t.kind === 'sa') return `SA ${saText(t)}`;
  if (t.kind === 'policy') return `policy ${policyText(t)}`;
  return t.text;
}

/** Base of the kernel-refused-it errors; `errnoName` is the kernel's (EEXIST, …). */
export class XfrmError extends KipsecError {
  readonly op: string;
  readonly target: XfrmTarget;
  readonly errno: number;
  readonly errnoName: string;
  constructor(code: string, op: string, target: XfrmTarget, cause: NetlinkErrnoError, hint = '') {
    super(code, `${op} ${targetText(target)}: ${cause.errnoName}${cause.extack ? ` (${cause.extack})` : ''}${hint ? ` — ${hint}` : ''}`, { cause });
    this.op = op;
    this.target = target;
    this.errno = cause.errno;
    this.errnoName = cause.errnoName;
  }
}

/** EEXIST: an SA with this (dst, spi, proto, mark) or a policy with this selector/dir exists. */
export class XfrmExistsError extends XfrmError {
  constructor(op: string, t: XfrmTarget, c: NetlinkErrnoError) { super('ERR_XFRM_EXISTS', op, t, c, 'already installed'); }
}
/** ENOENT / ESRCH: nothing installed under this id. */
export class XfrmNotFoundError extends XfrmError {
  constructor(op: string, t: XfrmTarget, c: NetlinkErrnoError) { super('ERR_XFRM_NOT_FOUND', op, t, c, 'not installed'); }
}
/** EINVAL: the kernel rejected a field (key length, ICV length, mode/family mismatch…). */
export class XfrmInvalidError extends XfrmError {
  constructor(op: string, t: XfrmTarget, c: NetlinkErrnoError) { super('ERR_XFRM_INVALID', op, t, c, 'kernel rejected a field'); }
}
/** EPROTONOSUPPORT / ENOSYS / EOPNOTSUPP / EAFNOSUPPORT: no ESP, unknown algorithm, or feature missing in this kernel. */
export class XfrmUnsupportedError extends XfrmError {
  constructor(op: string, t: XfrmTarget, c: NetlinkErrnoError) { super('ERR_XFRM_UNSUPPORTED', op, t, c, 'not supported by this kernel (ESP module or algorithm missing?)'); }
}
/** EPERM / EACCES: needs CAP_NET_ADMIN in the network namespace. */
export class XfrmPermissionError extends XfrmError {
  constructor(op: string, t: XfrmTarget, c: NetlinkErrnoError) { super('ERR_XFRM_PERMISSION', op, t, c, 'needs CAP_NET_ADMIN'); }
}
/** Any other errno (ENOMEM, ENOBUFS, …). */
export class XfrmKernelError extends XfrmError {
  constructor(op: string, t: XfrmTarget, c: NetlinkErrnoError) { super('ERR_XFRM_KERNEL', op, t, c); }
}

/** Map a netlink failure to its typed error; other errors (timeouts, closed socket) pass through. */
export function xfrmError(e: unknown, op: string, target: XfrmTarget): unknown {
  if (!(e instanceof NetlinkErrnoError)) return e;
  switch (e.errnoName) {
    case 'EEXIST': return new XfrmExistsError(op, target, e);
    case 'ENOENT': case 'ESRCH': return new XfrmNotFoundError(op, target, e);
    case 'EINVAL': return new XfrmInvalidError(op, target, e);
    case 'EPROTONOSUPPORT': case 'ENOSYS': case 'EOPNOTSUPP': case 'EAFNOSUPPORT': return new XfrmUnsupportedError(op, target, e);
    case 'EPERM': case 'EACCES': return new XfrmPermissionError(op, target, e);
    default: return new XfrmKernelError(op, target, e);
  }
}

/** A multi-step install failed; `rolledBack` lists what was removed again, `leftover` what could not be. */
export class XfrmInstallError extends KipsecError {
  readonly rolledBack: readonly string[];
  readonly leftover: readonly string[];
  constructor(step: string, cause: unknown, rolledBack: readonly string[], leftover: readonly string[]) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(leftover.length ? 'ERR_XFRM_INSTALL_PARTIAL' : 'ERR_XFRM_INSTALL',
      `install failed at ${step}: ${why}; rolled back ${rolledBack.length} step(s)${leftover.length ? `, could NOT remove: ${leftover.join('; ')}` : ''}`, { cause });
    this.rolledBack = rolledBack;
    this.leftover = leftover;
  }
}
