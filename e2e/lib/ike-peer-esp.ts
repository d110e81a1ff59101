// The ike-peer's ESP data path (`datapath: 'userspace'` in its spec): kipsec's userspace ESP engine
// (src/esp, RFC 4303 in RFC 3948 UDP between a TUN device and UDP 4500) keyed straight from the
// engine's KernelIpsec calls, the way strongSwan's kernel-libipsec keys libipsec. The agent's stack
// (XfrmKernel over EspXfrm, src/agent/userspace) does the same through XFRM-shaped messages; this
// stand-in skips that layer so the peer can also report the keys it installed, which the strongSwan 6
// test compares with charon's save-keys output. Policy-based tunnel mode, one reqid per Child SA
// config, no lifetimes (the tests rekey by command).
import { randomInt } from 'node:crypto';
import { DEFAULT_REPLAY_WINDOW, rangeSelector, type EspAlgorithm, type EspEngine, type EspSelector } from '../../src/esp/index.js';
import type { SecretBytes } from '../../src/common/secret.js';
import type { ChildSaCounters, EspAlgorithms, KernelChildSa, KernelChildSaRef, KernelChildSaUpdate, KernelIpsec } from '../../src/ike/index.js';

/** XFRM's ESP names (src/ike/sa/esp.ts) → the engine's suites. */
const AEAD: Readonly<Record<string, EspAlgorithm>> = { 'rfc4106(gcm(aes))': 'aes-gcm-16', 'rfc7539esp(chacha20,poly1305)': 'chacha20-poly1305' };
const CBC_HMAC: Readonly<Record<string, EspAlgorithm>> = {
  'hmac(sha256)/128': 'aes-cbc-hmac-sha2-256-128', 'hmac(sha384)/192': 'aes-cbc-hmac-sha2-384-192', 'hmac(sha512)/256': 'aes-cbc-hmac-sha2-512-256',
};

export function engineSuite(a: EspAlgorithms): { algorithm: EspAlgorithm; key: SecretBytes; integrityKey?: SecretBytes } {
  if (a.kind === 'aead') {
    const algorithm = AEAD[a.name];
    if (algorithm === undefined) throw new Error(`the ESP engine has no ${a.name}`);
    return { algorithm, key: a.key };
  }
  const algorithm = a.encryption.name === 'cbc(aes)' ? CBC_HMAC[`${a.integrity.name}/${a.integrity.truncBits}`] : undefined;
  if (algorithm === undefined) throw new Error(`the ESP engine has no ${a.encryption.name} with ${a.integrity.name}/${a.integrity.truncBits}`);
  return { algorithm, key: a.encryption.key, integrityKey: a.integrity.key };
}

/** One installed Child SA as the peer reports it: SPIs and each direction's keys (hex). */
export interface InstalledKeys {
  readonly inbound: number; readonly outbound: number; readonly algorithm: EspAlgorithm;
  readonly inKey: string; readonly outKey: string; readonly inIntegrityKey: string | null; readonly outIntegrityKey: string | null;
}

const hex = (s: SecretBytes | undefined): string | null => (s === undefined ? null : Buffer.from(s.expose()).toString('hex'));

export class EspKernel implements KernelIpsec {
  readonly installed = new Map<number, KernelChildSa>();
  /** Every Child SA ever installed, in order, with its keys: what the test compares (rekeyed ones stay listed). */
  readonly history: InstalledKeys[] = [];
  readonly #engine: EspEngine;
  readonly #allocated = new Set<number>();
  readonly #policies = new Map<number, number[]>();
  #nextPolicy = 1;

  constructor(engine: EspEngine) { this.#engine = engine; }

  allocSpi(): Promise<number> {
    for (;;) {
      const spi = randomInt(0x100, 0xffffffff) >>> 0;
      if (!this.#allocated.has(spi)) { this.#allocated.add(spi); return Promise.resolve(spi); }
    }
  }

  releaseSpi(req: { readonly spi: number }): Promise<void> { this.#allocated.delete(req.spi >>> 0); return Promise.resolve(); }

  installChildSa(sa: KernelChildSa): Promise<void> {
    const sel = (which: 'in' | 'out', side: 'source' | 'destination'): EspSelector[] =>
      sa.policies.filter((p) => p.direction === which).slice(0, 8).map((p) => rangeSelector(p[side]));
    const inSuite = engineSuite(sa.inbound.algorithms);
    const outSuite = engineSuite(sa.outbound.algorithms);
    const encapIn = sa.inbound.encap; const encapOut = sa.outbound.encap;
    if (!encapIn || !encapOut) return Promise.reject(new Error('the ESP engine sends ESP in UDP only (natTraversal: always)'));
    this.#engine.addSa({
      direction: 'in', spi: sa.inbound.spi, reqid: sa.reqid, ...inSuite, replayWindow: Math.max(sa.inbound.replayWindow, DEFAULT_REPLAY_WINDOW),
      peer: { address: sa.inbound.source, port: encapIn.sourcePort }, sources: sel('in', 'source'), destinations: sel('in', 'destination'),
    });
    this.#engine.addSa({
      direction: 'out', spi: sa.outbound.spi, reqid: sa.reqid, ...outSuite, replayWindow: 0, active: sa.outboundActive,
      peer: { address: sa.outbound.destination, port: encapOut.destinationPort },
    });
    if (!this.#policies.has(sa.reqid)) {
      const ids: number[] = [];
      for (const p of sa.policies.filter((x) => x.direction === 'out')) {
        const id = this.#nextPolicy++;
        this.#engine.addPolicy({ id, reqid: sa.reqid, priority: p.priority, source: rangeSelector(p.source), destination: rangeSelector(p.destination) });
        ids.push(id);
      }
      this.#policies.set(sa.reqid, ids);
    }
    this.installed.set(sa.inbound.spi, sa);
    this.history.push({
      inbound: sa.inbound.spi, outbound: sa.outbound.spi, algorithm: inSuite.algorithm,
      inKey: hex(inSuite.key)!, outKey: hex(outSuite.key)!, inIntegrityKey: hex(inSuite.integrityKey), outIntegrityKey: hex(outSuite.integrityKey),
    });
    return Promise.resolve();
  }

  updateChildSa(ref: KernelChildSaRef, u: KernelChildSaUpdate): Promise<void> {
    if (u.activateOutbound) this.#engine.activateOutbound(ref.outboundSpi, ref.reqid);
    return Promise.resolve();
  }

  deleteChildSa(ref: KernelChildSaRef, opts: { readonly keepPolicies: boolean }): Promise<void> {
    this.#engine.removeSa({ direction: 'in', spi: ref.inboundSpi, reqid: ref.reqid });
    this.#engine.removeSa({ direction: 'out', spi: ref.outboundSpi, reqid: ref.reqid });
    this.installed.delete(ref.inboundSpi);
    this.#allocated.delete(ref.inboundSpi >>> 0);
    if (!opts.keepPolicies) {
      for (const id of this.#policies.get(ref.reqid) ?? []) this.#engine.removePolicy(id);
      this.#policies.delete(ref.reqid);
    }
    return Promise.resolve();
  }

  queryCounters(ref: KernelChildSaRef): Promise<ChildSaCounters> {
    const sas = this.#engine.stats().sas;
    const find = (d: 'in' | 'out', spi: number): { bytes: bigint; packets: bigint; lastUseMs: number | null } | undefined =>
      sas.find((s) => s.direction === d && s.spi >>> 0 === spi >>> 0 && s.reqid >>> 0 === ref.reqid >>> 0);
    const i = find('in', ref.inboundSpi); const o = find('out', ref.outboundSpi);
    return Promise.resolve({ inboundBytes: i?.bytes ?? 0n, inboundPackets: i?.packets ?? 0n, outboundBytes: o?.bytes ?? 0n, outboundPackets: o?.packets ?? 0n, lastInboundMs: i?.lastUseMs ?? null });
  }

  installTrap(): Promise<void> { return Promise.resolve(); }
  removeTrap(): Promise<void> { return Promise.resolve(); }
  restoreChildSa(): Promise<boolean> { return Promise.resolve(false); }
}
