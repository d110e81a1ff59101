// Errors of the netlink layer. The XFRM client turns NetlinkErrnoError into typed XFRM errors
// naming the SA or policy (src/xfrm/errors.ts); everything here knows only messages.
import { KipsecError } from '../../common/errors.js';
import { errnoName } from './errno.js';

/** The kernel answered NLMSG_ERROR with a negative errno. */
export class NetlinkErrnoError extends KipsecError {
  readonly errno: number;
  readonly errnoName: string;
  readonly nlmsgType: number;
  /** Extended ACK text (NLMSGERR_ATTR_MSG) when the kernel sent one. */
  readonly extack: string | undefined;
  constructor(errno: number, nlmsgType: number, extack?: string) {
    const name = errnoName(errno);
    super('ERR_NETLINK_ERRNO', `netlink request type ${nlmsgType} failed: ${name}${extack ? ` (${extack})` : ''}`);
    this.errno = Math.abs(errno);
    this.errnoName = name;
    this.nlmsgType = nlmsgType;
    this.extack = extack;
  }
}

export class NetlinkTimeoutError extends KipsecError {
  constructor(nlmsgType: number, seq: number, timeoutMs: number) {
    super('ERR_NETLINK_TIMEOUT', `no netlink reply to type ${nlmsgType} seq ${seq} within ${timeoutMs} ms`);
  }
}

export class NetlinkClosedError extends KipsecError {
  constructor(what: string) { super('ERR_NETLINK_CLOSED', `netlink socket closed: ${what}`); }
}

/** A dump was interrupted by a concurrent change (NLM_F_DUMP_INTR) more times than we retry. */
export class NetlinkDumpInterruptedError extends KipsecError {
  constructor(nlmsgType: number) { super('ERR_NETLINK_DUMP_INTR', `dump of type ${nlmsgType} kept being interrupted by concurrent changes`); }
}

/** The socket failed (e.g. ENOBUFS: the kernel dropped messages because we read too slowly). */
export class NetlinkSocketError extends KipsecError {
  readonly errnoName: string;
  constructor(errnoName: string, message: string) { super('ERR_NETLINK_SOCKET', message); this.errnoName = errnoName; }
}
