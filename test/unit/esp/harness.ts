// A native ESP engine on 127.0.0.1 without a TUN device (decapsulated packets come up as 'inner'
// events, outbound ones go in through inject()) and a plain UDP socket as its peer, so the tests
// see the exact datagrams the engine sends and choose the exact datagrams it receives.
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SecretBytes } from '../../../src/common/secret.js';
import { EspEngine, type EspEvent } from '../../../src/esp/engine.js';
import { ESP_KEY_BYTES, isAead, type EspAlgorithm, type EspSaSpec } from '../../../src/esp/codec.js';
import { cidrSelector } from '../../../src/esp/selector.js';
import type { RefSa } from './reference.js';

export const ADDON_BUILT = existsSync(fileURLToPath(new URL('../../../native/build/Release/kipsec_esp.node', import.meta.url)));
export const SKIP = ADDON_BUILT ? false : 'native/build/Release/kipsec_esp.node is not built (npm run build:native)';

export interface Scope { after(fn: () => unknown): void }

export const LOCAL_NET = '10.1.0.0/24';
export const REMOTE_NET = '10.2.0.0/24';
export const OUT_SPI = 0xc0de0001;
export const IN_SPI = 0xc0de0002;
export const REQID = 7;

export interface Harness {
  readonly engine: EspEngine;
  readonly peer: Socket;
  readonly peerPort: number;
  /** Datagrams the peer socket received, with the sender's port. */
  readonly received: Array<{ data: Buffer; port: number }>;
  readonly events: EspEvent[];
  send(datagram: Uint8Array): Promise<void>;
}

export async function harness(t: Scope, o: { ikeQueue?: number } = {}): Promise<Harness> {
  const engine = EspEngine.open({ tunFd: null, address: '127.0.0.1', port: 0, ...(o.ikeQueue !== undefined ? { ikeQueue: o.ikeQueue } : {}) });
  t.after(() => engine.close());
  const peer = createSocket('udp4');
  await new Promise<void>((r) => peer.bind(0, '127.0.0.1', r));
  t.after(() => peer.close());
  const received: Harness['received'] = [];
  peer.on('message', (data, rinfo) => received.push({ data, port: rinfo.port }));
  const events: EspEvent[] = [];
  engine.on((e) => events.push(e));
  return {
    engine, peer, peerPort: peer.address().port, received, events,
    send: (d) => new Promise((resolve, reject) => peer.send(d, engine.port, '127.0.0.1', (err) => (err ? reject(err) : resolve()))),
  };
}

/** Poll until pred holds; fails naming what it waited for. Bounded in time. */
export async function until(pred: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Key material of a suite: AEAD key || salt; AES-CBC the AES key alone (integrityKeyFor the HMAC key). */
export function keyFor(alg: EspAlgorithm, keyBytes: number): Uint8Array {
  if (!isAead(alg)) return randomBytes(keyBytes);
  return randomBytes((alg === 'chacha20-poly1305' ? 32 : keyBytes) + 4);
}

/** The HMAC key of an AES-CBC suite, as long as the hash output (RFC 4868 §2.1.1); none for AEAD. */
export function integrityKeyFor(alg: EspAlgorithm): Partial<EspSaSpec> {
  const n = ESP_KEY_BYTES[alg].integrityKey;
  return n === 0 ? {} : { integrityKey: new SecretBytes(randomBytes(n)) };
}

function refOf(alg: EspAlgorithm, key: Uint8Array, spi: number, extra: Partial<EspSaSpec>): RefSa {
  return { algorithm: alg, key, spi, ...(extra.integrityKey ? { integrityKey: extra.integrityKey.expose() } : {}), ...(extra.esn ? { esn: true } : {}) };
}

/** Outbound SA to the harness peer plus the policy LOCAL_NET → REMOTE_NET using it. */
export function addOutbound(h: Harness, alg: EspAlgorithm, key: Uint8Array, extra: Partial<EspSaSpec> = {}): RefSa {
  h.engine.addSa({ direction: 'out', spi: OUT_SPI, reqid: REQID, algorithm: alg, key: new SecretBytes(key), peer: { address: '127.0.0.1', port: h.peerPort }, ...extra });
  h.engine.addPolicy({ id: 1, reqid: REQID, source: cidrSelector(LOCAL_NET), destination: cidrSelector(REMOTE_NET) });
  return refOf(alg, key, extra.spi ?? OUT_SPI, extra);
}

/** Inbound SA for REMOTE_NET → LOCAL_NET (and the IPv6 documentation prefix both ways). */
export function addInbound(h: Harness, alg: EspAlgorithm, key: Uint8Array, extra: Partial<EspSaSpec> = {}): RefSa {
  h.engine.addSa({
    direction: 'in', spi: IN_SPI, reqid: REQID, algorithm: alg, key: new SecretBytes(key),
    sources: [cidrSelector(REMOTE_NET), cidrSelector('2001:db8:2::/64')], destinations: [cidrSelector(LOCAL_NET), cidrSelector('2001:db8:1::/64')], ...extra,
  });
  return refOf(alg, key, extra.spi ?? IN_SPI, extra);
}

export function saStats(h: Harness, direction: 'in' | 'out', spi: number) {
  const s = h.engine.stats().sas.find((x) => x.direction === direction && x.spi === spi);
  if (!s) throw new Error(`no ${direction} SA 0x${spi.toString(16)} in stats`);
  return s;
}
