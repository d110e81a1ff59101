// Loader for the project's N-API addon (native/kipsec_native.c, built by `npm install` or
// `npm run build:native`). Only what Node lacks lives there: netlink sockets, UDP_ENCAP on the
// IKE 4500 socket, per-socket IPsec bypass policies, and TUN devices. Missing build → a
// KipsecError saying how to build.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'node:dgram';
import { KipsecError } from '../common/errors.js';
import { AF_INET, AF_INET6, UDP_ENCAP_ESPINUDP } from './constants.js';

/** An open netlink socket inside the addon (a JS external: only the addon can use it). */
export interface NetlinkHandle { readonly __netlinkHandle: unique symbol }

/**
 * Called once per wake-up with the datagrams read (in order) and, after them, the socket error
 * that stopped the read if any (ENOBUFS: the kernel dropped messages because the receive buffer
 * was full). Runs from the event loop; a throw becomes the process's uncaughtException.
 */
export type NetlinkReader = (err: (Error & { code?: string }) | null, datagrams: readonly Buffer[]) => void;

export interface KipsecNative {
  /** socket(AF_NETLINK, SOCK_RAW, protocol), buffer sizes (0: kernel default), bound to a kernel-chosen port, polled for reading. */
  netlinkOpen(protocol: number, recvBufferSize: number, sendBufferSize: number, onRead: NetlinkReader): NetlinkHandle;
  netlinkPort(h: NetlinkHandle): number;
  /** sendto(kernel) of one datagram; synchronous, throws an errno-named Error. */
  netlinkSend(h: NetlinkHandle, datagram: Uint8Array): number;
  netlinkAddMembership(h: NetlinkHandle, group: number): void;
  netlinkRef(h: NetlinkHandle, ref: boolean): void;
  /** Idempotent; safe from inside onRead. */
  netlinkClose(h: NetlinkHandle): void;
  setUdpEncap(fd: number, type?: number): void;
  getUdpEncap(fd: number): number;
  setIpsecBypass(fd: number, family: number): void;
  /** SO_RCVBUFFORCE, else SO_RCVBUF (capped by net.core.rmem_max). */
  setRecvBuffer(fd: number, bytes: number): void;
  openTun(name?: string): { fd: number; name: string };
}

/** The addon failed to load (not built, wrong ABI) or a call failed (code = errno name in `errnoName`). */
export class NativeError extends KipsecError {
  constructor(code: string, message: string, cause?: unknown) { super(code, message, cause === undefined ? {} : { cause }); }
}

// This module runs from the checkout (src/xfrm, under tsx) or compiled (dist/src/xfrm: `npx
// kipsec`, the image); the addon is built in the package's native/ either way.
const ADDON_PATHS = ['../../native/build/Release/kipsec_native.node', '../../../native/build/Release/kipsec_native.node']
  .map((p) => fileURLToPath(new URL(p, import.meta.url)));
const ADDON = ADDON_PATHS.find((p) => existsSync(p)) ?? ADDON_PATHS[0] ?? '';
let cached: KipsecNative | undefined;

/** Load (once) and return the addon; throws NativeError ERR_NATIVE_NOT_BUILT with the fix. */
export function loadNative(path = ADDON): KipsecNative {
  if (cached && path === ADDON) return cached;
  if (!existsSync(path))
    throw new NativeError('ERR_NATIVE_NOT_BUILT', `native addon not built: ${path} is missing; run \`npm run build:native\` (needs g++, make and Node headers)`);
  let mod: KipsecNative;
  try {
    mod = createRequire(import.meta.url)(path) as KipsecNative;
  } catch (e) {
    throw new NativeError('ERR_NATIVE_LOAD', `native addon ${path} failed to load (rebuild with \`npm run build:native\` for this Node version): ${e instanceof Error ? e.message : String(e)}`, e);
  }
  if (path === ADDON) cached = mod;
  return mod;
}

function call<T>(what: string, fn: () => T): T {
  try { return fn(); } catch (e) {
    const code = (e as { code?: string }).code ?? 'EUNKNOWN';
    throw new NativeError(`ERR_NATIVE_${code}`, `${what}: ${e instanceof Error ? e.message : String(e)}`, e);
  }
}

/**
 * The OS file descriptor of a bound node:dgram socket. Node has no public API for it; on Linux
 * the socket's UDP handle exposes `fd` (libuv's uv_fileno), which Node has kept since 0.x and which
 * node:net documents for its own handles. The handle sits in the socket's internal state (symbol
 * "state symbol"); the `_handle` getter returns the same but prints a DeprecationWarning
 * (DEP0112) on every agent start, so it is only the fallback. We read it only after bind (before
 * that there is no fd), check it is a real descriptor, and use it only for setsockopt — never for
 * I/O, so libuv's view of the socket stays correct.
 */
export function dgramFd(sock: Socket): number {
  const state = Object.getOwnPropertySymbols(sock).find((s) => s.description === 'state symbol');
  const viaState = state === undefined ? undefined : (sock as unknown as Record<symbol, { handle?: { fd?: unknown } } | undefined>)[state]?.handle;
  const handle = viaState ?? (sock as unknown as { _handle?: { fd?: unknown } })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0)
    throw new NativeError('ERR_NATIVE_NO_FD', 'dgram socket has no file descriptor yet (bind it first) or this Node version hides it');
  return fd;
}

/** UDP_ENCAP_ESPINUDP on the IKE NAT-T socket (port 4500): the kernel then consumes ESP-in-UDP (RFC 3948). */
export function setUdpEncap(sock: Socket, native: KipsecNative = loadNative()): void {
  const fd = dgramFd(sock);
  call('setUdpEncap', () => native.setUdpEncap(fd, UDP_ENCAP_ESPINUDP));
}

/** Per-socket bypass policies (in and out) so IKE traffic never matches the policies it negotiates. */
export function setIpsecBypass(sock: Socket, native: KipsecNative = loadNative()): void {
  const fd = dgramFd(sock);
  const family = sock.address().family === 'IPv6' ? AF_INET6 : AF_INET;
  call('setIpsecBypass', () => native.setIpsecBypass(fd, family));
}

/** The socket's receive buffer, past net.core.rmem_max where the process may (CAP_NET_ADMIN). */
export function setRecvBuffer(sock: Socket, bytes: number, native: KipsecNative = loadNative()): void {
  const fd = dgramFd(sock);
  call('setRecvBuffer', () => native.setRecvBuffer(fd, bytes));
}

/** A TUN device (IFF_TUN | IFF_NO_PI, non-blocking) for the userspace data plane; close the fd with fs.closeSync. */
export function openTun(name?: string, native: KipsecNative = loadNative()): { fd: number; name: string } {
  return call(`openTun(${name ?? ''})`, () => native.openTun(name));
}
