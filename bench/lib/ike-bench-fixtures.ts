// What the in-process handshake benches (ike-handshake, ike-handshake-same-run) share: a kernel
// that accepts everything, and one small ECDSA PKI (a CA and two end entities) for the certificate
// case. Inputs to the handshakes, not part of what is measured.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { KernelIpsec } from '../../src/ike/ports.js';
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
