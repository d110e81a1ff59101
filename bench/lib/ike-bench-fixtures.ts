// What the in-process handshake benches (ike-handshake, ike-handshake-same-run) share: a kernel
// that accepts everything, and one small ECDSA PKI (a CA and two end entities) for the certificate
// case. Inputs to the handshakes, not part of what is measured.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { IkeEngine, PeerConfig } from '../../src/ike/engine.js';
import type { Endpoint, KernelIpsec } from '../../src/ike/ports.js';
import { buildCert, dn } from '../../test/unit/ike/crypto/cert-builder.js';

export function benchKernel(): KernelIpsec {
  let spi = 0x1000;
  return {
    allocSpi: () => Promise.resolve(spi++), releaseSpi: () => Promise.resolve(), installChildSa: () => Promise.resolve(),
    updateChildSa: () => Promise.resolve(), deleteChildSa: () => Promise.resolve(),
    queryCounters: () => Promise.resolve({ inboundBytes: 0n, inboundPackets: 0n, outboundBytes: 0n, outboundPackets: 0n, lastInboundMs: null }),
    installTrap: () => Promise.resolve(), removeTrap: () => Promise.resolve(), restoreChildSa: () => Promise.resolve(false),
  };
}

type KeyPair = { publicKey: KeyObject; privateKey: KeyObject };
export interface BenchPki { readonly caK: KeyPair; readonly aK: KeyPair; readonly bK: KeyPair; readonly caDer: Uint8Array; readonly aCert: Uint8Array; readonly bCert: Uint8Array }

/** A P-256 CA, and alice.example and bob.example certified by it (DNS SANs), valid for a year. */
export function benchPki(): BenchPki {
  const ec = (): KeyPair => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const caK = ec(); const aK = ec(); const bK = ec();
  const validity = { notBeforeMs: Date.now() - 86_400_000, notAfterMs: Date.now() + 86_400_000 * 365 };
  const CA = dn('bench CA');
  const caDer = buildCert({ ...validity, subject: CA, issuer: CA, publicKey: caK.publicKey, signingKey: caK.privateKey, ca: true, keyUsage: [5, 6] });
  const ee = (name: string, k: KeyPair, serial: number): Uint8Array => buildCert({ ...validity, serial, subject: dn(name), issuer: CA, publicKey: k.publicKey, signingKey: caK.privateKey, keyUsage: [0], dns: [name] });
  return { caK, aK, bK, caDer, aCert: ee('alice.example', aK, 2), bCert: ee('bob.example', bK, 3) };
}

/** How a tree names identities and PSKs (each tree's own src/ in ike-handshake-same-run). */
export interface ConfigHelpers {
  readonly identityFromString: (s: string) => PeerConfig['local']['id'];
  readonly pskFrom: (s: string) => unknown;
}

/**
 * Peer pair `i` of the handshake benches, [initiator, responder at `responder`]: one peer per
 * handshake, each with its own initiator address (198.18.0.0/15, RFC 2544), AES-GCM + X25519,
 * lifetimes long enough that nothing rekeys while measured.
 */
export function benchPeerPair(pki: BenchPki, h: ConfigHelpers, kind: 'psk' | 'cert', i: number, responder: string): [PeerConfig, PeerConfig] {
  const aAddr = `198.18.${(i >> 8) & 255}.${i & 255}`;
  const mk = (me: string, them: string, myId: string, theirId: string, cert: Uint8Array, key: KeyObject, start: 'initiate' | 'respond'): PeerConfig => ({
    name: `p${i}`, local: { address: me, id: h.identityFromString(myId) }, remote: { address: them, id: h.identityFromString(theirId) },
    auth: (kind === 'psk' ? { method: 'psk', secret: h.pskFrom('bench secret') } : { method: 'certificate', certificate: cert, privateKey: key, cas: [pki.caDer] }) as PeerConfig['auth'],
    ike: { proposals: ['aes128gcm16-prfsha256-x25519'], rekeyTimeMs: 3_600_000 },
    children: [{ name: 'net', localTs: ['10.1.0.0/16'], remoteTs: ['10.2.0.0/16'], espProposals: ['aes128gcm16'], mode: 'tunnel' as const, rekeyTimeMs: 3_600_000, lifeTimeMs: 4_000_000 }].map((c) => me === responder ? { ...c, localTs: c.remoteTs, remoteTs: c.localTs } : c),
    dpd: { intervalMs: 0, action: 'clear' }, startAction: start, fragmentMtu: 0,
  });
  return [mk(aAddr, responder, 'alice.example', 'bob.example', pki.aCert, pki.aK.privateKey, 'initiate'), mk(responder, aAddr, 'bob.example', 'alice.example', pki.bCert, pki.bK.privateKey, 'respond')];
}

/** What a rig needs from a tree's engine module: its IkeEngine, clock and random source. */
export interface RigEngine {
  readonly create: (ports: unknown, peers: readonly PeerConfig[], options?: { cryptoWorkers: number }) => IkeEngine;
  readonly clock: unknown;
  readonly random: unknown;
}

/**
 * Long-lived engines, as in the daemon: each handshake uses a fresh peer pair configured up front
 * (config parsing is not handshake work), so the figure is per handshake, not per engine.
 */
export class HandshakeRig {
  readonly queue: { d: Uint8Array; from: Endpoint; to: Endpoint }[] = [];
  up = 0;
  next = 0;
  readonly alice: IkeEngine;
  readonly bob: IkeEngine;
  readonly size: number;
  readonly responder: string;

  constructor(e: RigEngine, pairs: readonly (readonly [PeerConfig, PeerConfig])[], responder: string, responderWorkers = 0) {
    this.responder = responder;
    const transport = { send: (d: Uint8Array, to: Endpoint, from: Endpoint): void => { this.queue.push({ d, from, to }); } };
    const events = { emit: (ev: { type: string }): void => { if (ev.type === 'child-up') this.up++; } };
    const ports = (): unknown => ({ transport, kernel: benchKernel(), clock: e.clock, random: e.random, events });
    this.size = pairs.length;
    this.alice = e.create(ports(), pairs.map((p) => p[0]));
    this.bob = e.create(ports(), pairs.map((p) => p[1]), { cryptoWorkers: responderWorkers });
  }

  /** One full handshake (IKE_SA_INIT + IKE_AUTH with the first Child SA); `sizes` collects the IKE_AUTH message sizes. */
  async handshake(sizes?: number[]): Promise<void> {
    const before = this.up;
    this.alice.initiate(`p${this.next++}`);
    await this.alice.idle();
    for (let p = this.queue.shift(); p !== undefined; p = this.queue.shift()) {
      if (sizes && p.d[18] === 35) sizes.push(p.d.length);
      await (p.to.address === this.responder ? this.bob : this.alice).receive(p.d, p.from, p.to);
    }
    if (this.up - before !== 2) throw new Error(`handshake did not complete (${this.up - before} child-up)`);
  }

  async close(): Promise<void> { await this.alice.close(); await this.bob.close(); }
}
