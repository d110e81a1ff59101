// The daemon's part in route mode (daemon.ts option `links`): the interfaces of the config's
// route-mode tunnels are set up before the engine exists (their if_id must be there when the SAs
// land), again on reload with the new config (a removed tunnel's goes), and all of ours go at
// shutdown; if set-up fails at start the agent does not start and none of ours stays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../../src/agent/daemon.js';
import { missingTuning } from '../../../src/agent/native.js';
import type { TunnelConfig } from '../../../src/agent/tunnel.js';
import type { TunnelLinks } from '../../../src/agent/xfrm-interfaces.js';
import { FakeEngine, FakeSockets, FakeXfrm, logSink } from './fakes.js';

const PSK = 'Sup3r-Secret-PSK-never-in-logs-4711';

const tunnel = (name: string, ifId: number) => `apiVersion: kipsec.io/v1alpha1
kind: IPsecTunnel
metadata: {name: ${name}}
spec:
  profile: aws
  local: {address: 192.0.2.1, subnets: [10.1.0.0/16]}
  remote: {address: 203.0.113.${ifId}, subnets: [172.31.0.0/16]}
  auth: {psk: {file: psk}}
  xfrmInterface: {ifId: ${ifId}, insideAddress: 169.254.${ifId}.2/30}
`;

class RecordingLinks implements TunnelLinks {
  readonly calls: string[] = [];
  failSync = false;
  sync(tunnels: readonly TunnelConfig[]): Promise<void> {
    this.calls.push(`sync ${tunnels.map((t) => `${t.name}:${String(t.xfrmInterface?.ifId)}`).join(',')}`);
    return this.failSync ? Promise.reject(new Error('spec.mode: route needs XFRM interfaces')) : Promise.resolve();
  }
  removeAll(): Promise<number> { this.calls.push('removeAll'); return Promise.resolve(1); }
}

function setup(t: { after(fn: () => unknown): void }, config: string) {
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-agent-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'psk'), `${PSK}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'tunnels.yaml'), config);
  const links = new RecordingLinks();
  const order: string[] = [];
  const agent = new Agent({
    log: logSink().log, configFile: join(dir, 'tunnels.yaml'), controlSocket: join(dir, 'run', 'agent.sock'), xfrm: new FakeXfrm(), sockets: new FakeSockets(),
    tuning: missingTuning('unit test'), links,
    // The file source also builds engines without peers to check each config (a dry run): not counted.
    engineFactory: (ports, peers) => { if (peers.length > 0) order.push(`engine after ${links.calls.length} link call(s)`); return new FakeEngine(ports, peers); },
  });
  return { dir, agent, links, order };
}

test('start sets up the route-mode interfaces before the engine exists; reload syncs with the new config; shutdown removes all of ours', async (t) => {
  const s = setup(t, `${tunnel('aws-1', 41)}---\n${tunnel('aws-2', 42)}`);
  await s.agent.start();
  assert.deepEqual(s.links.calls, ['sync aws-1:41,aws-2:42']);
  assert.deepEqual(s.order, ['engine after 1 link call(s)']);
  writeFileSync(join(s.dir, 'tunnels.yaml'), tunnel('aws-1', 41));
  const r = await s.agent.reload();
  assert.deepEqual(r.removed, ['aws-2']);
  assert.deepEqual(s.links.calls, ['sync aws-1:41,aws-2:42', 'sync aws-1:41']);
  await s.agent.shutdown();
  assert.deepEqual(s.links.calls.at(-1), 'removeAll');
});

test('if the interfaces cannot be set up at start, the agent does not start and removes whatever of ours it made', async (t) => {
  const s = setup(t, tunnel('aws-1', 41));
  s.links.failSync = true;
  await assert.rejects(s.agent.start(), /route needs XFRM interfaces/);
  assert.deepEqual(s.links.calls, ['sync aws-1:41', 'removeAll']);
  assert.deepEqual(s.order, [], 'no engine was made');
  await s.agent.abandon();
});
