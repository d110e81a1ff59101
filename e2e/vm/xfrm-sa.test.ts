// Kernel lane (real ESP): XfrmClient against Linux XFRM. Every scenario runs in a fresh network
// namespace: this file re-executes itself there (`ip netns exec NS node --import tsx THIS`) with
// XFRM_SCENARIO set, because a netlink socket belongs to the namespace it was opened in and Node
// cannot setns(). Assertions run in the child; the parent test shows its stderr on failure.
// Covers: add/get/update/delete/list for every ESP suite the IKE engine offers (RFC 4106 GCM,
// RFC 3602 CBC + RFC 4868 HMAC-SHA2, RFC 7634 ChaCha20-Poly1305, HMAC-SHA1-96), ESN and large
// replay windows (RFC 4303 §2.2.1/§3.4.3), ESP-in-UDP (RFC 3948), marks, if_id, ALLOCSPI,
// GETAE counters, typed errors, and rollback of a failed multi-step install.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SecretBytes } from '../../src/common/secret.js';
import { toHex } from '../../src/common/bytes.js';
import { XfrmClient } from '../../src/xfrm/client.js';
import { XfrmExistsError, XfrmInstallError, XfrmInvalidError, XfrmNotFoundError, XfrmUnsupportedError } from '../../src/xfrm/errors.js';
import { NETLINK_XFRM } from '../../src/xfrm/netlink/constants.js';
import { RawNetlinkTransport } from '../../src/xfrm/netlink/raw-transport.js';
import type { NetlinkTransport } from '../../src/xfrm/netlink/transport.js';
import type { SaSpec } from '../../src/xfrm/sa.js';
import type { PolicySpec } from '../../src/xfrm/policy.js';
import { Netns } from '../lib/netns.js';
import { runScenario, scenarioChild } from '../lib/scenario.js';

const SELF = fileURLToPath(import.meta.url);

/** Records every datagram the kernel sends, so dumps can be kept as golden bytes. */
class Recording implements NetlinkTransport {
  readonly inner = new RawNetlinkTransport(NETLINK_XFRM);
  readonly received: Uint8Array[] = [];
  get portId(): number { return this.inner.portId; }
  send(d: Uint8Array): void { this.inner.send(d); }
  setReceiver(onD: (d: Uint8Array) => void, onE: (e: Error) => void): void { this.inner.setReceiver((d) => { this.received.push(d.slice()); onD(d); }, onE); }
  addMembership(g: number): void { this.inner.addMembership(g); }
  setRef(r: boolean): void { this.inner.setRef(r); }
  close(): void { this.inner.close(); }
}

const key = (byte: number, len: number): SecretBytes => new SecretBytes(new Uint8Array(len).fill(byte));
const base = { src: '192.0.2.1', dst: '192.0.2.2', reqid: 1, mode: 'tunnel' } as const;

const SUITES: Record<string, Partial<SaSpec>> = {
  'aes128gcm16': { aead: { name: 'rfc4106(gcm(aes))', key: key(1, 20), icvBits: 128 } },
  'aes256gcm16': { aead: { name: 'rfc4106(gcm(aes))', key: key(2, 36), icvBits: 128 } },
  'aes128-sha256': { crypt: { name: 'cbc(aes)', key: key(3, 16) }, auth: { name: 'hmac(sha256)', key: key(4, 32), truncBits: 128 } },
  'aes256-sha256': { crypt: { name: 'cbc(aes)', key: key(3, 32) }, auth: { name: 'hmac(sha256)', key: key(4, 32), truncBits: 128 } },
  'aes128-sha384': { crypt: { name: 'cbc(aes)', key: key(5, 16) }, auth: { name: 'hmac(sha384)', key: key(6, 48), truncBits: 192 } },
  'aes256-sha384': { crypt: { name: 'cbc(aes)', key: key(5, 32) }, auth: { name: 'hmac(sha384)', key: key(6, 48), truncBits: 192 } },
  'aes128-sha512': { crypt: { name: 'cbc(aes)', key: key(7, 16) }, auth: { name: 'hmac(sha512)', key: key(8, 64), truncBits: 256 } },
  'aes256-sha512': { crypt: { name: 'cbc(aes)', key: key(7, 32) }, auth: { name: 'hmac(sha512)', key: key(8, 64), truncBits: 256 } },
  'chacha20poly1305': { aead: { name: 'rfc7539esp(chacha20,poly1305)', key: key(9, 36), icvBits: 128 } },
  'aes128-sha1': { crypt: { name: 'cbc(aes)', key: key(10, 16) }, auth: { name: 'hmac(sha1)', key: key(11, 20), truncBits: 96 } },
};

function record(name: string, what: string, datagrams: readonly Uint8Array[]): void {
  const out = process.env.VM_OUT;
  if (!out) return;
  mkdirSync(`${out}/xfrm-dumps`, { recursive: true });
  writeFileSync(`${out}/xfrm-dumps/${name}.json`, JSON.stringify({ name, what, datagrams: datagrams.map(toHex) }) + '\n');
}

const scenarios: Record<string, () => Promise<unknown>> = {
  async suites() {
    const rec = new Recording();
    const c = new XfrmClient(rec, { timeoutMs: 60_000 });
    let spi = 0x1000;
    for (const [name, alg] of Object.entries(SUITES)) {
      const sa: SaSpec = { ...base, spi: ++spi, replayWindow: 32, ...alg };
      await c.addSa(sa);
      const got = await c.getSa({ dst: sa.dst, spi: sa.spi });
      assert.equal(got.src, sa.src, name);
      assert.equal(got.reqid, 1, name);
      assert.equal(got.replayWindow, 32, name);
      assert.equal(got.aead?.name, sa.aead?.name, name);
      assert.equal(got.crypt?.name, sa.crypt?.name, name);
      assert.equal(got.auth?.name, sa.auth?.name, name);
      assert.equal(got.auth?.truncBits, sa.auth?.truncBits, name);
      assert.deepEqual(got.aead?.key.expose() ?? got.crypt?.key.expose(), (sa.aead?.key ?? sa.crypt?.key)!.expose(), name);
      // UPDSA on an installed SA may change lifetimes (the kernel keeps algorithms and keys).
      await c.updateSa({ ...sa, soft: { addExpiresSec: 3000 }, hard: { addExpiresSec: 3600 } });
      const upd = await c.getSa({ dst: sa.dst, spi: sa.spi });
      assert.deepEqual(upd.hard, { addExpiresSec: 3600 }, name);
    }
    rec.received.length = 0;
    const all = await c.listSas();
    record('sa-dump-suites', 'XfrmClient.listSas() reply after adding one SA per ESP suite (e2e/vm/xfrm-sa.test.ts scenario suites)', rec.received);
    assert.equal(all.length, Object.keys(SUITES).length);
    for (const s of all) await c.deleteSa({ dst: s.dst, spi: s.spi, src: s.src });
    assert.equal((await c.listSas()).length, 0);
    await assert.rejects(c.getSa({ dst: base.dst, spi: 0x1001 }), XfrmNotFoundError);
    c.close();
    return Object.keys(SUITES);
  },

  async features() {
    const rec = new Recording();
    const c = new XfrmClient(rec, { timeoutMs: 60_000 });
    const sa: SaSpec = {
      ...base, spi: 0x2001, aead: SUITES.aes256gcm16!.aead!, esn: true, replayWindow: 1024,
      encap: { sport: 4500, dport: 4500 }, mark: { value: 0x10, mask: 0xff }, setMark: { value: 0x5, mask: 0xff }, ifId: 0x20,
      extraFlags: 1, soft: { bytes: 1_000_000n, packets: 1000n, addExpiresSec: 3000 }, hard: { bytes: 2_000_000n, packets: 2000n, addExpiresSec: 3600 },
    };
    await c.addSa(sa);
    const got = await c.getSa({ dst: sa.dst, spi: sa.spi, mark: sa.mark! });
    assert.equal(got.esn, true);
    assert.equal(got.replayWindow, 1024);
    assert.deepEqual(got.encap, { sport: 4500, dport: 4500, oa: '0.0.0.0' });
    assert.deepEqual(got.mark, { value: 0x10, mask: 0xff });
    assert.deepEqual(got.setMark, { value: 0x5, mask: 0xff });
    assert.equal(got.ifId, 0x20);
    assert.equal(got.extraFlags, 1);
    assert.deepEqual(got.soft, sa.soft);
    assert.deepEqual(got.hard, sa.hard);
    // Without the mark the SA is invisible: marks are part of the SA's identity.
    await assert.rejects(c.getSa({ dst: sa.dst, spi: sa.spi }), XfrmNotFoundError);
    rec.received.length = 0;
    const ae = await c.getAe({ dst: sa.dst, spi: sa.spi, src: sa.src, mark: sa.mark! });
    record('ae-reply-esn', 'XFRM_MSG_GETAE reply (NEWAE) for the ESN SA with a 1024-packet window (e2e/vm/xfrm-sa.test.ts scenario features)', rec.received);
    assert.equal(ae.current?.bytes, 0n);
    assert.equal(ae.replayEsn?.replay_window, 1024);
    assert.equal(ae.replayEsn?.bmp.length, 32, 'the kernel returns the whole bitmap');
    // NEWAE: restore replay state (as after a restart or migration), then read it back.
    await c.setAe({ dst: sa.dst, spi: sa.spi, src: sa.src, mark: sa.mark! }, { replayEsn: { ...ae.replayEsn!, oseq: 1000, oseq_hi: 1 } });
    const ae2 = await c.getAe({ dst: sa.dst, spi: sa.spi, src: sa.src, mark: sa.mark! });
    assert.equal(ae2.replayEsn?.oseq, 1000);
    assert.equal(ae2.replayEsn?.oseq_hi, 1);
    rec.received.length = 0;
    await c.listSas();
    record('sa-dump-features', 'XfrmClient.listSas() reply for an ESN/encap/mark/if_id/set-mark SA (e2e/vm/xfrm-sa.test.ts scenario features)', rec.received);
    // Transport mode with a selector, and a plain 32-packet window outside ESN.
    const tr: SaSpec = { ...base, spi: 0x2002, mode: 'transport', aead: SUITES.aes128gcm16!.aead!, replayWindow: 64, selector: { src: '192.0.2.1/32', dst: '192.0.2.2/32', proto: 17 } };
    await c.addSa(tr);
    const t = await c.getSa({ dst: tr.dst, spi: tr.spi });
    assert.equal(t.mode, 'transport');
    assert.deepEqual(t.selector, tr.selector);
    assert.equal(t.replayWindow, 64);
    await c.flushSas('esp');
    assert.equal((await c.listSas()).length, 0);
    c.close();
    return 'ok';
  },

  async allocspi() {
    const c = new XfrmClient(new RawNetlinkTransport(NETLINK_XFRM), { timeoutMs: 60_000 });
    const spi = await c.allocSpi({ src: '192.0.2.2', dst: '192.0.2.1', reqid: 5, min: 0xc0000000, max: 0xc00000ff });
    assert.ok(spi >= 0xc0000000 && spi <= 0xc00000ff, `spi 0x${spi.toString(16)}`);
    const spi2 = await c.allocSpi({ src: '192.0.2.2', dst: '192.0.2.1', reqid: 6, min: 0xc0000000, max: 0xc00000ff });
    assert.notEqual(spi2, spi);
    const larval = await c.getSa({ dst: '192.0.2.1', spi });
    assert.equal(larval.aead, undefined);
    // The IKE engine then installs the negotiated SA over the larval one with UPDSA.
    await c.updateSa({ src: '192.0.2.2', dst: '192.0.2.1', spi, reqid: 5, ...SUITES.aes128gcm16! });
    assert.equal((await c.getSa({ dst: '192.0.2.1', spi })).aead?.name, 'rfc4106(gcm(aes))');
    // ADDSA on an SPI held by a larval SA collides.
    await assert.rejects(c.addSa({ src: '192.0.2.2', dst: '192.0.2.1', spi: spi2, ...SUITES.aes128gcm16! }), XfrmExistsError);
    c.close();
    return spi;
  },

  async errors() {
    const c = new XfrmClient(new RawNetlinkTransport(NETLINK_XFRM), { timeoutMs: 60_000 });
    const sa: SaSpec = { ...base, spi: 0x3001, ...SUITES.aes128gcm16! };
    await c.addSa(sa);
    await assert.rejects(c.addSa(sa), (e: unknown) => e instanceof XfrmExistsError && /esp spi 0x00003001 192\.0\.2\.1 → 192\.0\.2\.2: EEXIST/.test(e.message));
    await assert.rejects(c.deleteSa({ dst: base.dst, spi: 0x3999 }), (e: unknown) => e instanceof XfrmNotFoundError && e.errnoName === 'ESRCH');
    // GCM with a 10-byte key is not a valid AES key + salt.
    await assert.rejects(c.addSa({ ...base, spi: 0x3002, aead: { name: 'rfc4106(gcm(aes))', key: key(1, 10), icvBits: 128 } }),
      (e: unknown) => (e instanceof XfrmInvalidError || e instanceof XfrmUnsupportedError) && /spi 0x00003002/.test(e.message));
    await assert.rejects(c.addSa({ ...base, spi: 0x3003, crypt: { name: 'cbc(nosuchcipher)', key: key(1, 16) }, auth: SUITES['aes128-sha256']!.auth! }), XfrmUnsupportedError);
    await assert.rejects(c.deletePolicy({ selector: { src: '10.1.0.0/16', dst: '10.2.0.0/16' }, dir: 'out' }), XfrmNotFoundError);
    c.close();
    return 'ok';
  },

  async rollback() {
    const c = new XfrmClient(new RawNetlinkTransport(NETLINK_XFRM), { timeoutMs: 60_000 });
    const inSa: SaSpec = { src: '192.0.2.2', dst: '192.0.2.1', spi: 0x4001, reqid: 9, ...SUITES.aes128gcm16! };
    const outSa: SaSpec = { src: '192.0.2.1', dst: '192.0.2.2', spi: 0x4002, reqid: 9, ...SUITES.aes128gcm16! };
    const tmpl = (s: string, d: string) => [{ src: s, dst: d, proto: 'esp' as const, reqid: 9, mode: 'tunnel' as const }];
    const pols: PolicySpec[] = [
      { selector: { src: '10.1.0.0/16', dst: '10.2.0.0/16' }, dir: 'out', templates: tmpl('192.0.2.1', '192.0.2.2') },
      { selector: { src: '10.2.0.0/16', dst: '10.1.0.0/16' }, dir: 'in', templates: tmpl('192.0.2.2', '192.0.2.1') },
      { selector: { src: '10.2.0.0/16', dst: '10.1.0.0/16' }, dir: 'fwd', templates: tmpl('192.0.2.2', '192.0.2.1') },
    ];
    // Someone else's fwd policy is already there: the fifth step fails with EEXIST.
    await c.addPolicy({ ...pols[2]!, priority: 7 });
    await assert.rejects(c.installChild({ sas: [inSa, outSa], policies: pols }), (e: unknown) => {
      assert.ok(e instanceof XfrmInstallError, String(e));
      assert.equal(e.rolledBack.length, 4);
      assert.deepEqual(e.leftover, []);
      assert.match(e.message, /dir fwd: EEXIST/);
      return true;
    });
    assert.equal((await c.listSas()).length, 0, 'no SA left behind');
    const left = await c.listPolicies();
    assert.equal(left.length, 1, 'only the pre-existing policy remains');
    assert.equal(left[0]!.priority, 7);
    // And the whole child installs once the conflict is gone, and removes cleanly.
    await c.deletePolicy({ selector: pols[2]!.selector, dir: 'fwd' });
    const child = await c.installChild({ sas: [inSa, outSa], policies: pols });
    assert.equal((await c.listSas()).length, 2);
    assert.equal((await c.listPolicies()).length, 3);
    await c.removeChild(child);
    assert.equal((await c.listSas()).length + (await c.listPolicies()).length, 0);
    c.close();
    return 'ok';
  },
};

async function inNs(t: { after(fn: () => unknown): void }, scenario: string): Promise<unknown> {
  return runScenario(await Netns.create(t, `xsa${scenario}`), SELF, scenario);
}

if (!(await scenarioChild(scenarios))) {
  test('add/get/update/list/delete an SA for every ESP suite the IKE engine offers (GCM, CBC+HMAC-SHA2, ChaCha20-Poly1305, SHA1)', async (t) => {
    const names = await inNs(t, 'suites');
    assert.equal((names as string[]).length, 10);
  });
  test('ESN with a 1024-packet window, ESP-in-UDP, mark, output mark, if_id, extra flags and lifetimes read back as installed', async (t) => { await inNs(t, 'features'); });
  test('ALLOCSPI returns distinct SPIs in range and UPDSA completes the larval SA', async (t) => { await inNs(t, 'allocspi'); });
  test('kernel refusals become typed errors naming the SA (EEXIST, ESRCH, EINVAL, ENOSYS) or policy (ENOENT)', async (t) => { await inNs(t, 'errors'); });
  test('a Child SA install failing at its fifth step leaves no SA or policy of its own behind', async (t) => { await inNs(t, 'rollback'); });
}
