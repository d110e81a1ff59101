// An IPsecTunnel as a gateway node runs it: the cluster spec made into the standalone form the
// agent already compiles and checks (config.ts: profiles, proposals, lifetimes, DPD), with the
// node's address as local.address, the cluster's pod CIDRs as the default local.subnets and the
// PSK read from its Secret in place of a file — so a tunnel means the same on a gateway node as in
// the standalone agent. The PSK never passes through text: the compiler reads it from an
// in-memory file system holding only those bytes. Route mode (an XFRM interface) compiles as in the
// standalone agent; the data path refuses it where it has no XFRM interfaces (userspace/peer.ts).
import type { IPsecTunnel, IPsecTunnelSpec } from '../../api/types.js';
import type { PeerConfig } from '../../ike/engine.js';
import { loadConfigText, type ConfigFs } from '../config.js';
import { desiredOfTunnel } from '../file-source.js';
import { peerConfigOf } from '../peers.js';
import type { DesiredPeer } from '../source.js';
import type { TunnelConfig } from '../tunnel.js';

const PSK_PATH = '/kipsec-gateway/psk';

/**
 * spec.remote.address then spec.remote.standbyAddresses (a cloud HA pair): the address to use is
 * the current one until it has gone REMOTE_FAILOVER_MS without an established IKE SA, then the next,
 * round robin.
 */
export const REMOTE_FAILOVER_MS = 15_000;
export function remoteAddresses(t: IPsecTunnel): string[] { return [t.spec.remote.address, ...(t.spec.remote.standbyAddresses ?? [])]; }
export function nextRemoteIndex(count: number, index: number, sinceMs: number, nowMs: number, established: boolean): number {
  if (count <= 1 || established || nowMs - sinceMs < REMOTE_FAILOVER_MS) return index % Math.max(1, count);
  return (index + 1) % count;
}

export interface GatewayContext {
  /** The node's address: the tunnel's local address and, without local.id, its IKE identity. */
  readonly address: string;
  /** The cluster's pod CIDRs: local.subnets when the spec leaves them out. */
  readonly podCIDRs: readonly string[];
  /** The PSK from the tunnel's Secret (spec.auth.psk.secretRef). */
  readonly psk: Uint8Array | undefined;
  /** Which of remoteAddresses() to use; default the first. */
  readonly remoteIndex?: number;
  /** The data path's changes (userspace: ESP in UDP, suites it can key); throws what it refuses. */
  readonly adapt?: (p: PeerConfig) => PeerConfig;
}

/** `tunnel`: the compiled tunnel, for its XFRM interface in route mode (links.ts). */
export type Compiled = { readonly ok: true; readonly peer: DesiredPeer; readonly tunnel: TunnelConfig } | { readonly ok: false; readonly message: string };

/** The standalone spec this gateway runs; a string says why there is none. */
export function standaloneSpec(t: IPsecTunnel, c: Pick<GatewayContext, 'address' | 'podCIDRs' | 'remoteIndex'>): IPsecTunnelSpec | string {
  const s = t.spec;
  if (s.auth.certificate) return 'certificate authentication is not available on cluster gateways yet; use auth.psk.secretRef';
  const subnets = s.local.subnets ?? [...c.podCIDRs];
  if (subnets.length === 0) return 'spec.local.subnets is not set and no pod CIDRs are known in the cluster';
  const { nodeSelector: _sel, ...local } = s.local;
  const { standbyAddresses: _more, ...remote } = s.remote;
  const addresses = remoteAddresses(t);
  return { ...s, local: { ...local, address: c.address, subnets }, remote: { ...remote, address: addresses[(c.remoteIndex ?? 0) % addresses.length]! }, auth: { psk: { file: PSK_PATH } } };
}

export function compileGatewayTunnel(t: IPsecTunnel, c: GatewayContext): Compiled {
  const spec = standaloneSpec(t, c);
  if (typeof spec === 'string') return { ok: false, message: spec };
  if (!c.psk) return { ok: false, message: 'no PSK (the Secret is not readable yet)' };
  const psk = c.psk;
  const fs: ConfigFs = {
    readText: (p) => { throw Object.assign(new Error(`no file ${p}`), { code: 'ENOENT' }); },
    readBytes: (p) => { if (p !== PSK_PATH) throw Object.assign(new Error(`no file ${p}`), { code: 'ENOENT' }); return psk.slice(); },
    mode: (p) => { if (p !== PSK_PATH) throw Object.assign(new Error(`no file ${p}`), { code: 'ENOENT' }); return 0o600; },
  };
  const text = JSON.stringify({ apiVersion: t.apiVersion, kind: 'IPsecTunnel', metadata: { name: t.metadata.name }, spec });
  const res = loadConfigText(text, '/', fs);
  if (!res.ok) return { ok: false, message: res.problems.map((p) => `${p.path.replace(/^\S+ /, '').replace('spec.auth.psk.file', 'the PSK Secret')}: ${p.message.replaceAll(PSK_PATH, 'the Secret')}`).join('; ') };
  const tc = res.tunnels[0]!;
  try {
    let config = peerConfigOf(tc);
    if (c.adapt) config = c.adapt(config);
    // The session digest follows both addresses, so a new node or remote address renegotiates.
    const peer = desiredOfTunnel(tc, config);
    return { ok: true, tunnel: tc, peer: { ...peer, sessionDigest: `tunnel:${tc.name}:${c.address}:${tc.remoteAddress}`, ...(c.adapt ? { installRoutes: false } : {}) } };
  } catch (e) { return { ok: false, message: e instanceof Error ? e.message : String(e) }; }
}
