// An IPsecTunnel as a gateway node runs it: the cluster spec made into the standalone form the
// agent already compiles and checks (config.ts: profiles, proposals, lifetimes, DPD), with the
// node's address as local.address, the cluster's pod CIDRs as the default local.subnets and the
// PSK read from its Secret in place of a file — so a tunnel means the same on a gateway node as in
// the standalone agent. The PSK never passes through text: the compiler reads it from an
// in-memory file system holding only those bytes. Certificate authentication the same way: our
// certificate and key are the node's identity from the operator (cert-auth.ts), the CA bundle the
// remote's certificate must chain to comes from spec.auth.certificate.caSecretRef. Route mode (an
// XFRM interface) compiles as in the standalone agent; the data path refuses it where it has no XFRM interfaces (userspace/peer.ts).
import type { IPsecTunnel, IPsecTunnelSpec } from '../../api/types.js';
import type { PeerConfig } from '../../ike/engine.js';
import { loadConfigText, type ConfigFs } from '../config.js';
import { desiredOfTunnel } from '../file-source.js';
import { peerConfigOf } from '../peers.js';
import { CERT_FILES, certificateFiles, certificateLocalId, type GatewayIdentity } from './cert-auth.js';
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
  /** spec.auth.certificate: the CA bundle from caSecretRef, and the node's identity from the operator. */
  readonly caBundle?: Uint8Array | undefined;
  readonly identity?: GatewayIdentity | undefined;
  /** Which of remoteAddresses() to use; default the first. */
  readonly remoteIndex?: number;
  /** The data path's changes (userspace: ESP in UDP, suites it can key); throws what it refuses. */
  readonly adapt?: (p: PeerConfig) => PeerConfig;
}

/** `tunnel`: the compiled tunnel, for its XFRM interface in route mode (links.ts). */
export type Compiled = { readonly ok: true; readonly peer: DesiredPeer; readonly tunnel: TunnelConfig } | { readonly ok: false; readonly message: string };

/** The standalone spec this gateway runs; a string says why there is none. */
export function standaloneSpec(t: IPsecTunnel, c: Pick<GatewayContext, 'address' | 'podCIDRs' | 'remoteIndex' | 'identity'>): IPsecTunnelSpec | string {
  const s = t.spec;
  let localId = s.local.id;
  if (s.auth.certificate) {
    if (s.remote.id === undefined) return 'certificate authentication needs spec.remote.id (the identity the remote certificate must carry)';
    if (!c.identity) return 'no node certificate yet (the operator has not issued it)';
    const id = certificateLocalId(c.identity.certificate, s.local.id);
    if (!id.ok) return id.message;
    localId = id.id;
  }
  const subnets = s.local.subnets ?? [...c.podCIDRs];
  if (subnets.length === 0) return 'spec.local.subnets is not set and no pod CIDRs are known in the cluster';
  const { nodeSelector: _sel, ...local } = s.local;
  const { standbyAddresses: _more, ...remote } = s.remote;
  const addresses = remoteAddresses(t);
  const auth = s.auth.certificate ? { certificate: { ...CERT_FILES } } : { psk: { file: PSK_PATH } };
  return { ...s, local: { ...local, address: c.address, subnets, ...(localId !== undefined ? { id: localId } : {}) }, remote: { ...remote, address: addresses[(c.remoteIndex ?? 0) % addresses.length]! }, auth };
}

export function compileGatewayTunnel(t: IPsecTunnel, c: GatewayContext): Compiled {
  const spec = standaloneSpec(t, c);
  if (typeof spec === 'string') return { ok: false, message: spec };
  const noFile = (p: string): never => { throw Object.assign(new Error(`no file ${p}`), { code: 'ENOENT' }); };
  let fs: ConfigFs;
  let says = (m: string): string => m;
  const caRef = t.spec.auth.certificate?.caSecretRef;
  if (caRef) {
    if (!c.caBundle) return { ok: false, message: 'no CA bundle (the Secret is not readable yet)' };
    if (!c.identity) return { ok: false, message: 'no node certificate yet (the operator has not issued it)' };
    const files = certificateFiles(c.identity, c.caBundle, caRef);
    if (!files.ok) return { ok: false, message: files.message };
    fs = { readText: (p) => files.text.get(p) ?? noFile(p), readBytes: (p) => new Uint8Array(Buffer.from(files.text.get(p) ?? noFile(p))), mode: (p) => (files.text.has(p) ? 0o600 : noFile(p)) };
    says = files.says;
  } else {
    if (!c.psk) return { ok: false, message: 'no PSK (the Secret is not readable yet)' };
    const psk = c.psk;
    fs = {
      readText: noFile,
      readBytes: (p) => (p === PSK_PATH ? psk.slice() : noFile(p)),
      mode: (p) => (p === PSK_PATH ? 0o600 : noFile(p)),
    };
    says = (m) => m.replace('spec.auth.psk.file', 'the PSK Secret').replaceAll(PSK_PATH, 'the Secret');
  }
  const text = JSON.stringify({ apiVersion: t.apiVersion, kind: 'IPsecTunnel', metadata: { name: t.metadata.name }, spec });
  const res = loadConfigText(text, '/', fs);
  if (!res.ok) return { ok: false, message: res.problems.map((p) => says(`${p.path.replace(/^\S+ /, '')}: ${p.message}`)).join('; ') };
  const tc = res.tunnels[0]!;
  try {
    let config = peerConfigOf(tc);
    if (c.adapt) config = c.adapt(config);
    // The session digest follows both addresses, so a new node or remote address renegotiates.
    const peer = desiredOfTunnel(tc, config);
    return { ok: true, tunnel: tc, peer: { ...peer, sessionDigest: `tunnel:${tc.name}:${c.address}:${tc.remoteAddress}`, ...(c.adapt ? { installRoutes: false } : {}) } };
  } catch (e) { return { ok: false, message: says(e instanceof Error ? e.message : String(e)) }; }
}
