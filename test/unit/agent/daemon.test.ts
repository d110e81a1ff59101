// The agent daemon around a fake engine, fake XFRM and fake sockets, with the real control socket:
// status, initiate/terminate, reload (a bad file keeps the running config), errors in status with
// both proposal lists, adoption of kernel SAs on start, SIGTERM-style shutdown, and no PSK in any
// log line or status answer (issue 5, DESIGN.md §9).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readdirSync, writeFileSync, statSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, ConfigLoadError } from '../../../src/agent/daemon.js';
import { controlRequest } from '../../../src/agent/control/client.js';
import { formatStatus, type AgentStatus } from '../../../src/agent/status.js';
import { missingTuning } from '../../../src/agent/native.js';
import { reqidFor } from '../../../src/agent/tunnel.js';
import { KipsecError } from '../../../src/common/errors.js';
import { SecretBytes } from '../../../src/common/secret.js';
import { FakeEngine, FakeSockets, FakeXfrm, logSink } from './fakes.js';
import type { RestoreResult } from '../../../src/ike/engine.js';
import type { KernelIpsec } from '../../../src/ike/ports.js';
import { NetlinkSocketError, type SaState } from '../../../src/xfrm/index.js';

const PSK = 'Sup3r-Secret-PSK-never-in-logs-4711';

const tunnel = (name: string, remote = '192.0.2.2') => `apiVersion: kipsec.io/v1alpha1
kind: IPsecTunnel
metadata: {name: ${name}}
spec:
  local: {address: 192.0.2.1, subnets: [10.1.0.0/24]}
  remote: {address: ${remote}, subnets: [10.2.0.0/24]}
  auth: {psk: {file: psk}}
  ike: {proposals: [aes256gcm16-prfsha384-x25519]}
  esp: {proposals: [aes256gcm16]}
`;

const KEY = new SecretBytes(new Uint8Array(36));
/** An XFRM state as the kernel dumps it: AES-GCM keyed, or larval (ALLOCSPI, no keys yet). */
function dumped(src: string, dst: string, spi: number, reqid: number, o: { addTime?: bigint; larval?: boolean } = {}): SaState {
  return {
    src, dst, spi, reqid, ...(o.larval ? {} : { mode: 'tunnel' as const, aead: { name: 'rfc4106(gcm(aes))', key: KEY, icvBits: 128 } }),
    current: { bytes: 0n, packets: 0n, add_time: o.addTime ?? 100n, use_time: 0n }, stats: { replay_window: 0, replay: 0, integrity_failed: 0 },
  };
}

/** A Child SA of tunnel alpha (192.0.2.1 ↔ 198.51.100.7, inbound SPI `spi`) through the agent's kernel port; `encap` as seen inbound. */
async function installAlpha(kernel: KernelIpsec, spi: number, encap: { sourcePort: number; destinationPort: number } | null): Promise<void> {
  const life = { softSec: 3000, hardSec: 3600, softBytes: 0n, hardBytes: 0n, softPackets: 0n, hardPackets: 0n };
  const algorithms = { kind: 'aead', name: 'rfc4106(gcm(aes))', key: new SecretBytes(new Uint8Array(36)), icvBits: 128 } as const;
  const out = encap && { sourcePort: encap.destinationPort, destinationPort: encap.sourcePort };
  await kernel.installChildSa({
    peer: 'alpha', child: 'alpha', reqid: 1, mode: 'tunnel', policies: [], outboundActive: true, ifId: null, mark: null,
    inbound: { spi, source: '198.51.100.7', destination: '192.0.2.1', esn: false, replayWindow: 32, lifetimes: life, algorithms, encap },
    outbound: { spi: 0xd0000001, source: '192.0.2.1', destination: '198.51.100.7', esn: false, replayWindow: 0, lifetimes: life, algorithms, encap: out },
  });
}

/** A started agent with one installed Child SA of tunnel alpha (no NAT). */
async function startedWithAlpha(t: { after(fn: () => unknown): void }) {
  const s = setup(t);
  await s.agent.start();
  t.after(() => s.agent.shutdown());
  const kernel = s.engine().ports.kernel;
  const spi = await kernel.allocSpi({ local: '192.0.2.1', remote: '198.51.100.7', reqid: 1 });
  await installAlpha(kernel, spi, null);
  return { s, spi };
}

function setup(t: { after(fn: () => unknown): void }, config = tunnel('alpha'), o: { stateDir?: boolean; restoreResults?: readonly RestoreResult[] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-agent-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'psk'), `${PSK}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'tunnels.yaml'), config);
  const { log, lines } = logSink();
  const xfrm = new FakeXfrm();
  const sockets = new FakeSockets();
  const engines: FakeEngine[] = [];
  const agent = new Agent({
    log, configFile: join(dir, 'tunnels.yaml'), controlSocket: join(dir, 'run', 'agent.sock'), xfrm, sockets, ...(o.stateDir ? { stateDir: join(dir, 'run', 'state') } : {}),
    tuning: missingTuning('unit test'), engineFactory: (ports, peers) => { const e = new FakeEngine(ports, peers); if (o.restoreResults) e.restoreResults = o.restoreResults; engines.push(e); return e; },
  });
  return { dir, agent, xfrm, sockets, lines, engine: () => engines.at(-1)!, sock: join(dir, 'run', 'agent.sock') };
}

test('control socket is mode 0600 and answers status, initiate, terminate; unknown names are refused', async (t) => {
  const s = setup(t);
  await s.agent.start();
  t.after(() => s.agent.shutdown());
  assert.equal(statSync(s.sock).mode & 0o777, 0o600);
  assert.deepEqual(s.sockets.bound, ['192.0.2.1']);
  const st = await controlRequest(s.sock, 'status') as AgentStatus;
  assert.equal(st.tunnels.length, 1);
  assert.equal(st.tunnels[0]!.name, 'alpha');
  assert.equal(st.tunnels[0]!.ikeState, 'none');
  await controlRequest(s.sock, 'initiate', 'alpha');
  await controlRequest(s.sock, 'terminate', 'alpha');
  assert.deepEqual(s.engine().calls.filter((c) => /initiate|terminate/.test(c)), ['initiate alpha', 'terminate alpha']);
  await assert.rejects(controlRequest(s.sock, 'initiate', 'nope'), (e: Error & { code?: string }) => e.code === 'ERR_UNKNOWN_TUNNEL' && /configured: alpha/.test(e.message));
});

test('renew over the control socket is refused by a standalone agent, whose certificates come from its config file', async (t) => {
  const s = setup(t);
  await s.agent.start();
  t.after(() => s.agent.shutdown());
  await assert.rejects(controlRequest(s.sock, 'renew'), (e: Error & { code?: string }) => e.code === 'ERR_NO_NODE_IDENTITY' && /standalone/.test(e.message));
});

test('rekey over the control socket passes the tunnel and the flags to the engine and answers with hex SPIs; engine refusals keep their code', async (t) => {
  const s = setup(t);
  await s.agent.start();
  t.after(() => s.agent.shutdown());
  const ref = { peer: 'alpha', child: 'alpha', reqid: 1, local: '192.0.2.1', remote: '192.0.2.2', inboundSpi: 0xc0000005, outboundSpi: 0x0d000006 };
  s.engine().rekeyAnswer = (_n, what) => ({ ikeSpis: '00000000000000aa_i 00000000000000bb_r', ike: what.ike === true, children: what.child === true || !what.ike ? [ref] : [] });
  assert.deepEqual(await controlRequest(s.sock, 'rekey', 'alpha'), { tunnel: 'alpha', ikeSpis: '00000000000000aa_i 00000000000000bb_r', ike: false, children: [{ name: 'alpha', spiIn: 'c0000005', spiOut: '0d000006' }] });
  await controlRequest(s.sock, 'rekey', { name: 'alpha', ike: true });
  await controlRequest(s.sock, 'rekey', { name: 'alpha', ike: true, child: true });
  assert.deepEqual(s.engine().calls.filter((c) => c.startsWith('rekey')), ['rekey alpha', 'rekey alpha ike', 'rekey alpha ike child']);
  await assert.rejects(controlRequest(s.sock, 'rekey', { name: 'nope' }), (e: Error & { code?: string }) => e.code === 'ERR_UNKNOWN_TUNNEL');
  await assert.rejects(controlRequest(s.sock, 'rekey'), (e: Error & { code?: string }) => e.code === 'ERR_CONTROL_REQUEST' && /needs a tunnel name/.test(e.message));
  s.engine().rekeyAnswer = () => { throw new KipsecError('ERR_IKE_NOT_ESTABLISHED', 'tunnel "alpha" has no established IKE SA to rekey (it is down)'); };
  await assert.rejects(controlRequest(s.sock, 'rekey', 'alpha'), (e: Error & { code?: string }) => e.code === 'ERR_IKE_NOT_ESTABLISHED' && /no established IKE SA/.test(e.message));
  assert.ok(s.lines.some((l) => l.includes('rekey requested')), 'the agent logs the operator\'s request');
});

test('reload with a bad file keeps the running config; a good one adds, changes and removes tunnels', async (t) => {
  const s = setup(t, tunnel('alpha') + '---\n' + tunnel('beta'));
  await s.agent.start();
  t.after(() => s.agent.shutdown());
  const engine = s.engine();
  writeFileSync(join(s.dir, 'tunnels.yaml'), tunnel('alpha').replace('aes256gcm16-prfsha384-x25519', 'aes257-prfsha384-x25519'));
  await assert.rejects(controlRequest(s.sock, 'reload'), (e: Error & { code?: string }) => e.code === 'ERR_CONFIG' && /spec\.ike\.proposals\[0\]: unknown transform "aes257"/.test(e.message));
  assert.deepEqual(s.agent.peers.map((x) => x.name), ['alpha', 'beta'], 'running config kept');
  assert.deepEqual(engine.calls.filter((c) => /^(add|remove)/.test(c)), [], 'nothing applied');
  writeFileSync(join(s.dir, 'tunnels.yaml'), tunnel('alpha', '192.0.2.3') + '---\n' + tunnel('gamma'));
  const r = await controlRequest(s.sock, 'reload') as { added: string[]; removed: string[]; changed: string[] };
  assert.deepEqual(r, { added: ['gamma'], removed: ['beta'], changed: ['alpha'], unchanged: [] });
  assert.deepEqual(engine.calls.filter((c) => /^(add|remove|initiate)/.test(c)), ['remove beta', 'add alpha', 'initiate alpha', 'add gamma', 'initiate gamma']);
});

test('a start with a bad config throws every problem and opens nothing', async (t) => {
  const s = setup(t, tunnel('alpha').replace('192.0.2.1', '192.0.2.300'));
  await assert.rejects(s.agent.start(), (e: unknown) => e instanceof ConfigLoadError && e.problems.some((p) => /alpha spec\.local\.address$/.test(p.path)));
  assert.deepEqual(s.sockets.bound, []);
});

test('NO_PROPOSAL_CHOSEN shows in status with the notify and both proposal lists', async (t) => {
  const s = setup(t);
  await s.agent.start();
  t.after(() => s.agent.shutdown());
  s.engine().ports.events.emit({ type: 'error', peer: 'alpha', error: {
    code: 'ERR_IKE_NO_PROPOSAL_CHOSEN', notify: 'NO_PROPOSAL_CHOSEN', origin: 'local', exchange: 'IKE_SA_INIT', message: 'no acceptable IKE proposal',
    proposals: { local: ['aes256gcm16-prfsha384-x25519'], remote: ['aes128-sha1-modp1024'] }, trafficSelectors: null } });
  const st = await controlRequest(s.sock, 'status') as AgentStatus;
  const e = st.tunnels[0]!.lastError!;
  assert.equal(e.notify, 'NO_PROPOSAL_CHOSEN');
  assert.deepEqual(e.localProposals, ['aes256gcm16-prfsha384-x25519']);
  assert.deepEqual(e.remoteProposals, ['aes128-sha1-modp1024']);
  assert.equal(st.tunnels[0]!.ikeState, 'failed');
  const table = formatStatus(st, Date.now()).join('\n');
  assert.match(table, /NO_PROPOSAL_CHOSEN: no acceptable IKE proposal/);
  assert.match(table, /our proposals: +aes256gcm16-prfsha384-x25519/);
  assert.match(table, /peer proposals: +aes128-sha1-modp1024/);
});

test('the PSK never appears in a log line or a status answer', async (t) => {
  const s = setup(t);
  await s.agent.start();
  // Even if someone logs the compiled tunnel or a secret under a plain field name:
  const { log, lines } = logSink();
  log.info({ tunnel: s.agent.peers[0], psk: PSK, nested: { secret: PSK, key: PSK } }, 'audit');
  log.info({ raw: new SecretBytes(Buffer.from(PSK)) }, 'wrapped');
  await controlRequest(s.sock, 'reload');
  const st = JSON.stringify(await controlRequest(s.sock, 'status'));
  await s.agent.shutdown();
  for (const l of [...s.lines, ...lines, st]) assert.ok(!l.includes(PSK), `PSK leaked: ${l.slice(0, 200)}`);
  assert.ok(lines.some((l) => l.includes('[redacted]')));
});

test('on start, our installed Child SAs are handed to the engine and orphans are removed', async (t) => {
  const s = setup(t);
  const reqid = reqidFor('alpha');
  s.xfrm.sas.push(
    dumped('192.0.2.2', '192.0.2.1', 0xc1000001, reqid),
    dumped('192.0.2.1', '192.0.2.2', 0xd2000002, reqid),
    dumped('192.0.2.2', '192.0.2.1', 0xc1000003, reqid, { addTime: 200n, larval: true }), // from a crash mid-negotiation
    dumped('192.0.2.9', '192.0.2.1', 0xc1000004, reqidFor('gone'), { addTime: 1n }),
    dumped('192.0.2.7', '192.0.2.1', 0x1234, 1, { addTime: 1n }), // not ours
  );
  s.xfrm.policies.push({ selector: { src: '10.1.0.0/24', dst: '10.2.0.0/24' }, dir: 'out', index: 1, current: { bytes: 0n, packets: 0n, add_time: 0n, use_time: 0n }, templates: [{ src: '192.0.2.1', dst: '192.0.2.2', proto: 'esp', reqid, mode: 'tunnel' }] });
  await s.agent.start();
  t.after(() => s.agent.shutdown());
  const adopted = s.engine().adopted.get('alpha');
  assert.equal(adopted?.length, 1);
  assert.deepEqual({ in: adopted![0]!.ref.inboundSpi, out: adopted![0]!.ref.outboundSpi, suite: adopted![0]!.algorithms.suite, localTs: adopted![0]!.localTs },
    { in: 0xc1000001, out: 0xd2000002, suite: 'aes256gcm16', localTs: ['10.1.0.0/24'] });
  assert.deepEqual(s.xfrm.sas.map((x) => x.spi).sort(), [0x1234, 0xc1000001, 0xd2000002].sort(), 'larval and unconfigured SAs removed, others untouched');
});

// XFRM_MSG_MAPPING: the kernel authenticated an ESP-in-UDP packet from a new NAT mapping. Only
// our own inbound SAs count; another daemon's SA on the host is none of ours to follow.
test('a kernel NAT mapping report for one of our inbound SAs reaches the engine; one for an SA we did not install is ignored (RFC 7296 §2.23)', async (t) => {
  const s = setup(t);
  await s.agent.start();
  t.after(() => s.agent.shutdown());
  assert.ok(s.xfrm.groups.includes('mapping'), 'subscribed to XFRMNLGRP_MAPPING');
  const kernel = s.engine().ports.kernel;
  const spi = await kernel.allocSpi({ local: '192.0.2.1', remote: '198.51.100.7', reqid: 1 });
  await installAlpha(kernel, spi, { sourcePort: 40_001, destinationPort: 4500 });
  const mapping = (dst: string, spiOf: number) => ({ kind: 'mapping', dst, spi: spiOf, reqid: 0, oldSrc: '198.51.100.7', oldSport: 40_001, newSrc: '198.51.100.7', newSport: 40_777 } as const);
  s.xfrm.handler!(mapping('192.0.2.1', spi));
  s.xfrm.handler!(mapping('192.0.2.1', 0x1234));
  s.xfrm.handler!(mapping('192.0.2.99', spi));
  assert.deepEqual(s.engine().calls.filter((c) => c.startsWith('natMapping')), [`natMapping ${spi.toString(16)} 198.51.100.7:40777`]);
});

// The sender's outbound state is the one whose sequence number runs toward the limit; with one-way
// traffic the peer's inbound state (and so our inbound one) never reaches it.
test('a soft expire of one of our outbound SAs (its packet limit, RFC 4303 §3.3.3) rekeys its Child SA like an inbound one; an outbound SPI that is not ours is ignored', async (t) => {
  const { s, spi } = await startedWithAlpha(t);
  const sa = s.xfrm.sas.find((x) => x.spi === 0xd0000001)!;
  s.xfrm.handler!({ kind: 'expire', hard: false, sa });
  s.xfrm.handler!({ kind: 'expire', hard: false, sa: { ...sa, spi: 0xd0000099 } });
  s.xfrm.handler!({ kind: 'expire', hard: false, sa: { ...sa, dst: '198.51.100.8' } });
  assert.deepEqual(s.engine().calls.filter((c) => c.startsWith('expired')), [`expired ${spi.toString(16)} false`]);
});

test('an event socket overrun (ENOBUFS) makes the agent ask the kernel which expires it missed and hand them to the engine', async (t) => {
  const { s, spi } = await startedWithAlpha(t);
  s.xfrm.sas = s.xfrm.sas.filter((x) => x.spi !== spi); // the kernel hard-expired it; that event was lost
  s.xfrm.errorHandler!(new NetlinkSocketError('ENOBUFS', 'netlink socket error ENOBUFS'));
  for (let i = 0; i < 100 && !s.engine().calls.some((c) => c.startsWith('expired')); i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(s.engine().calls.filter((c) => c.startsWith('expired')), [`expired ${spi.toString(16)} true`]);
  assert.ok(s.lines.some((l) => l.includes('XFRM events lost')), 'the loss is logged as such');
  assert.ok(!s.lines.some((l) => l.includes('XFRM event socket error')), 'not as a generic socket error');
});

test('checkpointed IKE SAs are resumed first: their Child SA and reserved SPI are neither adopted nor removed; unsafe files are refused by name; SIGTERM clears the state directory', async (t) => {
  const ref = { peer: 'alpha', child: 'alpha', reqid: 1, inboundSpi: 0xc1000001, outboundSpi: 0xd2000002, local: '192.0.2.1', remote: '192.0.2.2' };
  // The engine resumes the one readable checkpoint with that Child SA and the SPI of a rekey in flight.
  const s = setup(t, tunnel('alpha'), { stateDir: true, restoreResults: [{ id: '0123456789abcdef', outcome: 'resumed', peer: 'alpha', ikeSpis: 'x', state: 'established', children: [ref], reserved: [{ spi: 0xc1000003, local: '192.0.2.1', remote: '192.0.2.2' }], lost: [], lingering: [] }] });
  const state = join(s.dir, 'run', 'state');
  mkdirSync(state, { recursive: true, mode: 0o700 });
  writeFileSync(join(state, '0123456789abcdef.ikesa'), '{"v":1}', { mode: 0o600 });
  writeFileSync(join(state, '1111111111111111.ikesa'), '{"v":1,"secret":"SK_d-like"}', { mode: 0o644 });
  const reqid = reqidFor('alpha');
  s.xfrm.sas.push(
    dumped('192.0.2.2', '192.0.2.1', 0xc1000001, reqid),
    dumped('192.0.2.1', '192.0.2.2', 0xd2000002, reqid),
    dumped('192.0.2.2', '192.0.2.1', 0xc1000003, reqid, { addTime: 200n, larval: true }), // the SPI of the rekey in flight
  );
  await s.agent.start();
  assert.deepEqual(s.engine().restored, ['0123456789abcdef'], 'only the owner-only file reaches the engine');
  assert.equal(s.engine().adopted.get('alpha'), undefined, 'the resumed IKE SA owns its Child SA: nothing adopted');
  assert.deepEqual(s.xfrm.sas.map((x) => x.spi).sort(), [0xc1000001, 0xc1000003, 0xd2000002].sort(), 'resumed and reserved states kept');
  assert.ok(s.lines.some((l) => l.includes('1111111111111111.ikesa') && l.includes('mode 644')), 'the unsafe file is named with the reason');
  assert.ok(s.lines.some((l) => l.includes('IKE SA resumed from checkpoint') && l.includes('c1000001/d2000002')));
  assert.ok(!s.lines.some((l) => l.includes('SK_d-like')), 'file contents never logged');
  await s.agent.shutdown();
  assert.deepEqual(readdirSync(state), [], 'after SIGTERM deleted every SA no checkpoint is left to resume');
});

test('shutdown terminates every tunnel (Delete notifies) before closing', async (t) => {
  const s = setup(t, tunnel('alpha') + '---\n' + tunnel('beta'));
  await s.agent.start();
  await s.agent.shutdown();
  assert.deepEqual(s.engine().calls.filter((c) => /terminate|close/.test(c)), ['terminate alpha', 'terminate beta', 'close']);
  assert.ok(s.xfrm.closed);
});

// `ip xfrm state flush` by hand leaves our policies without SAs: the kernel then sends ACQUIREs
// for the child's reqid. The agent must notice and replace the child, not wait for the next rekey.
test('an ACQUIRE for an installed Child SA whose states were deleted behind our back makes the engine replace it (hard expire); an intact child is left alone', async (t) => {
  const { s, spi } = await startedWithAlpha(t);
  const acquire = { kind: 'acquire', seq: 1, src: '192.0.2.1', dst: '198.51.100.7', proto: 'esp', selector: { src: '10.1.0.0/24', dst: '10.2.0.0/24' }, policyIndex: 1, dir: 'out', priority: 2000, templates: [{ reqid: reqidFor('alpha') }] } as const;
  s.xfrm.handler!(acquire);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(s.engine().calls.filter((c) => c.startsWith('expired')), [], 'both states present: nothing to replace');
  s.xfrm.sas = s.xfrm.sas.filter((x) => x.spi !== 0xd0000001); // the outbound state, deleted by hand
  s.xfrm.handler!(acquire);
  for (let i = 0; i < 100 && !s.engine().calls.some((c) => c.startsWith('expired')); i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(s.engine().calls.filter((c) => c.startsWith('expired')), [`expired ${spi.toString(16)} true`]);
  assert.ok(s.lines.some((l) => l.includes('kernel states are gone')));
});

// A mesh pair must always be up: when the peer deletes the IKE SA (it renegotiates after a change
// of its own), the initiating side connects again; a standalone tunnel deleted by its peer stays down.
test('a keep-up (mesh) peer whose IKE SA the peer deleted is initiated again by the initiating side; a plain tunnel is not', async (t) => {
  const { loadFileSnapshot } = await import('../../../src/agent/file-source.js');
  const s = setup(t, tunnel('alpha') + '---\n' + tunnel('beta', '192.0.2.3'));
  const file = loadFileSnapshot(join(s.dir, 'tunnels.yaml'), () => undefined);
  await s.agent.start({ synced: true, peers: file.peers.map((p) => (p.name === 'alpha' ? { ...p, keepUp: true } : p)) });
  t.after(() => s.agent.shutdown());
  const before = s.engine().calls.filter((c) => c.startsWith('initiate')).length;
  for (const peer of ['alpha', 'beta']) s.engine().ports.events.emit({ type: 'ike-down', peer, ikeSpis: 'x', reason: 'peer-deleted' });
  await new Promise((r) => setTimeout(r, 1_300));
  assert.deepEqual(s.engine().calls.filter((c) => c.startsWith('initiate')).slice(before), ['initiate alpha']);
  assert.ok(s.lines.some((l) => l.includes('connecting again')));
});
