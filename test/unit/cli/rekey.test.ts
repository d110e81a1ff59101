// `kipsec rekey NAME [--child] [--ike] [--reauth]` against a running agent's control socket (the agent with a
// fake XFRM and fake UDP sockets). Refusals come from the real IKE engine behind the agent, so the
// operator sees exactly what the engine says, with exit status 1 like the other control commands;
// bad arguments are usage errors (2) that never reach the agent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../../src/agent/daemon.js';
import { missingTuning } from '../../../src/agent/native.js';
import { run } from '../../../src/cli/main.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from '../../../src/cli/commands.js';
import { FakeEngine, FakeSockets, FakeXfrm, logSink } from '../agent/fakes.js';

const TUNNEL = `apiVersion: kipsec.io/v1alpha1
kind: IPsecTunnel
metadata: {name: alpha}
spec:
  local: {address: 192.0.2.1, subnets: [10.1.0.0/24]}
  remote: {address: 192.0.2.2, subnets: [10.2.0.0/24]}
  auth: {psk: {file: psk}}
  ike: {proposals: [aes256gcm16-prfsha384-x25519]}
  esp: {proposals: [aes256gcm16-x25519]}
  startAction: STARTACTION
`;

function capture(): { io: { out(l: string): void; err(l: string): void }; out: string[]; err: string[] } {
  const out: string[] = []; const err: string[] = [];
  return { io: { out: (l) => out.push(l), err: (l) => err.push(l) }, out, err };
}

/** An agent on a temp control socket; `fake` swaps the real IkeEngine for the recording one. */
async function agent(t: { after(fn: () => unknown): void }, o: { fake?: boolean; startAction?: string } = {}): Promise<{ sock: string; engine: () => FakeEngine | undefined }> {
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-cli-rekey-'));
  writeFileSync(join(dir, 'psk'), 'a pre-shared key of decent length\n', { mode: 0o600 });
  writeFileSync(join(dir, 'tunnels.yaml'), TUNNEL.replace('STARTACTION', o.startAction ?? 'respond'));
  let fake: FakeEngine | undefined;
  const a = new Agent({
    log: logSink().log, configFile: join(dir, 'tunnels.yaml'), controlSocket: join(dir, 'agent.sock'), xfrm: new FakeXfrm(), sockets: new FakeSockets(),
    tuning: missingTuning('unit test'), ...(o.fake ? { engineFactory: (ports, peers) => (fake = new FakeEngine(ports, peers)) } : {}),
  });
  await a.start();
  t.after(async () => { await a.abandon(); rmSync(dir, { recursive: true, force: true }); });
  return { sock: join(dir, 'agent.sock'), engine: () => fake };
}

test('kipsec rekey prints what the agent started: the Child SAs by default, the IKE SA with --ike, both with both flags', async (t) => {
  const a = await agent(t, { fake: true });
  const ref = { peer: 'alpha', child: 'alpha', reqid: 1, local: '192.0.2.1', remote: '192.0.2.2', inboundSpi: 0xc0000005, outboundSpi: 0xcf000006 };
  a.engine()!.rekeyAnswer = (_n, w) => ({ ikeSpis: '1111111111111111_i 2222222222222222_r', ike: w.ike === true, children: w.child === true || !w.ike ? [ref] : [] });
  const c = capture();
  assert.equal(await run(['rekey', 'alpha', '--control-socket', a.sock], c.io), EXIT_OK, c.err.join('\n'));
  assert.deepEqual(c.out, ['alpha: Child SA alpha rekey started (SPIs in c0000005, out cf000006)']);
  const d = capture();
  assert.equal(await run(['rekey', 'alpha', '--ike', `--control-socket=${a.sock}`], d.io), EXIT_OK);
  assert.deepEqual(d.out, ['alpha: IKE SA rekey started (IKE SA 1111111111111111_i 2222222222222222_r)']);
  const e = capture();
  assert.equal(await run(['rekey', '--ike', '--child', 'alpha', '--control-socket', a.sock], e.io), EXIT_OK);
  assert.equal(e.out.length, 2);
  assert.deepEqual(a.engine()!.calls.filter((x) => x.startsWith('rekey')), ['rekey alpha', 'rekey alpha ike', 'rekey alpha ike child']);
});

test('kipsec rekey --reauth asks the engine for a make-before-break re-authentication (RFC 7296 §2.8.3) and takes neither --ike nor --child', async (t) => {
  const a = await agent(t, { fake: true });
  a.engine()!.rekeyAnswer = (_n, w) => ({ ikeSpis: '1111111111111111_i 2222222222222222_r', ike: true, ...(w.reauth ? { reauth: true } : {}), children: [] });
  const c = capture();
  assert.equal(await run(['rekey', 'alpha', '--reauth', '--control-socket', a.sock], c.io), EXIT_OK, c.err.join('\n'));
  assert.deepEqual(c.out, ['alpha: re-authentication started (a new IKE SA replaces 1111111111111111_i 2222222222222222_r, make-before-break)']);
  assert.deepEqual(a.engine()!.calls.filter((x) => x.startsWith('rekey')), ['rekey alpha reauth']);
  const d = capture();
  assert.equal(await run(['rekey', 'alpha', '--reauth', '--ike', '--control-socket', a.sock], d.io), EXIT_USAGE);
  assert.match(d.err.join('\n'), /--reauth replaces the IKE SA and every Child SA/);
});

test('kipsec rekey of a tunnel that is not established exits 1 with the engine\'s reason (real engine behind the agent)', async (t) => {
  const a = await agent(t);
  const c = capture();
  assert.equal(await run(['rekey', 'alpha', '--control-socket', a.sock], c.io), EXIT_FAILURE);
  assert.deepEqual(c.err, ['kipsec rekey: tunnel "alpha" has no established IKE SA to rekey (it is down)']);
  assert.deepEqual(c.out, []);
  const b = await agent(t, { startAction: 'initiate' }); // IKE_SA_INIT sent into the fake sockets, never answered
  const d = capture();
  assert.equal(await run(['rekey', 'alpha', '--ike', '--control-socket', b.sock], d.io), EXIT_FAILURE);
  assert.match(d.err.join('\n'), /has no established IKE SA to rekey \(it is still connecting\)/);
});

test('kipsec rekey of an unknown tunnel exits 1 and lists the configured ones', async (t) => {
  const a = await agent(t);
  const c = capture();
  assert.equal(await run(['rekey', 'beta', '--control-socket', a.sock], c.io), EXIT_FAILURE);
  assert.deepEqual(c.err, ['kipsec rekey: no tunnel named "beta" (configured: alpha)']);
});

test('kipsec rekey usage errors exit 2 without contacting the agent; no agent exits 1 saying so', async () => {
  const missing = join(tmpdir(), `kipsec-no-agent-${process.pid}.sock`);
  for (const args of [[], ['a', 'b'], ['a', '--ike=yes'], ['a', '--force']]) {
    const c = capture();
    assert.equal(await run(['rekey', ...args, '--control-socket', missing], c.io), EXIT_USAGE, args.join(' '));
    assert.match(c.err[0] ?? '', /^kipsec rekey: /);
  }
  const c = capture();
  assert.equal(await run(['rekey', 'alpha', '--control-socket', missing], c.io), EXIT_FAILURE);
  assert.match(c.err[0] ?? '', /cannot reach the agent at .*is the agent running/);
});

test('kipsec rekey --help names both flags, the default and the exit statuses', async () => {
  const c = capture();
  assert.equal(await run(['rekey', '--help'], c.io), EXIT_OK);
  const text = c.out.join('\n');
  assert.match(text, /^usage: kipsec rekey NAME \[--child\] \[--ike\]/);
  assert.match(text, /--child +rekey every installed Child SA \(the default\)/);
  assert.match(text, /--ike +rekey the IKE SA/);
  assert.match(text, /exit status: 0 started, 1 refused/);
});
