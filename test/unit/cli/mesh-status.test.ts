// `kipsec status --cluster | --kubeconfig PATH`: the mesh as a node × node matrix from the
// IPsecNode statuses (buildMeshView / formatMeshView are pure), and the command against a small
// fake apiserver over HTTP (lists of IPsecMeshes, IPsecNodes and Nodes), without a control socket.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IPsecMesh, IPsecNode, NodePeerStatus } from '../../../src/api/types.js';
import { LEGEND, buildMeshView, formatMeshView } from '../../../src/cli/mesh-status.js';
import { run } from '../../../src/cli/main.js';
import { EXIT_OK, EXIT_USAGE } from '../../../src/cli/commands.js';

const NOW = Date.UTC(2026, 0, 1, 12);
type Peer = Omit<NodePeerStatus, 'node'>;

function node(name: string, peers: Record<string, Peer>, o: { ready?: boolean; lastUpdateTime?: string } = {}): IPsecNode {
  return {
    apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name }, spec: { endpoint: { address: '192.0.2.1' } },
    status: {
      conditions: [{ type: 'Ready', status: (o.ready ?? true) ? 'True' : 'False', reason: 'x', message: '', lastTransitionTime: 't' }],
      peers: Object.entries(peers).map(([p, s]) => ({ node: p, ...s })),
      ...(o.lastUpdateTime ? { lastUpdateTime: o.lastUpdateTime } : {}),
    },
  };
}

const authFailed: Peer = { state: 'failed', lastError: { notify: 'AUTHENTICATION_FAILED', message: 'peer identity CN=x does not match node-c', time: '2026-01-01T11:59:00Z' } };

/** a–b up; a–c failed (a reports AUTHENTICATION_FAILED, c connecting); b–c: c's agent has not listed b (half); d stale. */
function fixture(nowMs = NOW): IPsecNode[] {
  const t = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return [
    node('node-a', { 'node-b': { state: 'established' }, 'node-c': authFailed, 'node-d': { state: 'established' } }, { lastUpdateTime: t(nowMs - 30_000) }),
    node('node-b', { 'node-a': { state: 'rekeying' }, 'node-c': { state: 'established' }, 'node-d': { state: 'established' } }),
    node('node-c', { 'node-a': { state: 'connecting' }, 'node-d': { state: 'established' } }, { ready: false }),
    node('node-d', { 'node-a': { state: 'established' }, 'node-b': { state: 'established' }, 'node-c': { state: 'established' } }, { lastUpdateTime: t(nowMs - 600_000) }),
  ];
}

const mesh: IPsecMesh = {
  apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecMesh', metadata: { name: 'default' }, spec: { nodeSelector: { 'kipsec.io/mesh': 'on' } },
  status: {
    pairsEstablished: 1, pairsExpected: 6,
    worstPairs: [{ nodes: ['node-a', 'node-c'], state: 'failed', message: 'm', since: '2026-01-01T11:00:00Z' }],
    conditions: [{ type: 'Ready', status: 'False', reason: 'NodesNotReady', message: '', lastTransitionTime: 't' }, { type: 'Degraded', status: 'True', reason: 'PairsNotEstablished', message: '', lastTransitionTime: 't' }],
  },
};

test('the matrix: rows report on columns — UP established/rekeying, XX failed, .. connecting, ? not listed or stale row, - self', () => {
  const v = buildMeshView(fixture(), mesh, NOW);
  assert.deepEqual(v.matrix['node-a'], { 'node-a': '-', 'node-b': 'UP', 'node-c': 'XX', 'node-d': 'UP' });
  assert.deepEqual(v.matrix['node-b'], { 'node-a': 'UP', 'node-b': '-', 'node-c': 'UP', 'node-d': 'UP' });
  assert.deepEqual(v.matrix['node-c'], { 'node-a': '..', 'node-b': '?', 'node-c': '-', 'node-d': 'UP' });
  assert.deepEqual(v.matrix['node-d'], { 'node-a': '?', 'node-b': '?', 'node-c': '?', 'node-d': '-' }, 'a stale row is not trusted');
});

test('the counts: pairs established/expected by the operator\'s rules, nodes ready/total (stale and not-ready nodes do not count)', () => {
  const v = buildMeshView(fixture(), mesh, NOW);
  assert.deepEqual([v.pairsEstablished, v.pairsExpected, v.nodesReady, v.nodesTotal], [1, 6, 2, 4]);
  assert.deepEqual(v.nodes.map((n) => [n.name, n.ready, n.stale]), [['node-a', true, false], ['node-b', true, false], ['node-c', false, false], ['node-d', false, true]]);
  assert.deepEqual(v.operator, { ready: 'False (NodesNotReady)', degraded: 'True (PairsNotEstablished)', pairsEstablished: 1, pairsExpected: 6 });
});

test('the non-established pairs, worst first, with the reported error naming the side and the since the operator recorded', () => {
  const v = buildMeshView(fixture(), mesh, NOW);
  assert.deepEqual(v.pairs.map((p) => [p.nodes.join(' '), p.state]), [['node-a node-c', 'failed'], ['node-a node-d', 'half'], ['node-b node-c', 'half'], ['node-b node-d', 'half'], ['node-c node-d', 'half']]);
  assert.deepEqual(v.pairs[0], { nodes: ['node-a', 'node-c'], state: 'failed', message: 'node-a: AUTHENTICATION_FAILED: peer identity CN=x does not match node-c; node-c: connecting', since: '2026-01-01T11:00:00Z' });
  assert.equal(v.pairs[2]?.message, 'node-c: does not report node-b; node-b reports established');
  assert.equal(v.pairs[1]?.since, undefined, 'not listed by the operator: no since');
});

test('the table: summary line, operator line, numbered matrix, legend, stale note, then each pair with its error', () => {
  const lines = formatMeshView(buildMeshView(fixture(), mesh, NOW));
  assert.deepEqual(lines.slice(0, 9), [
    'mesh default (nodes kipsec.io/mesh=on): 1/6 pairs established, 2/4 nodes ready',
    'operator status: Ready False (NodesNotReady), Degraded True (PairsNotEstablished), 1/6 pairs',
    '',
    '     node    state      1   2   3   4',
    '  1  node-a  ready      -   UP  XX  UP',
    '  2  node-b  ready      UP  -   UP  UP',
    '  3  node-c  not ready  ..  ?   -   UP',
    '  4  node-d  stale      ?   ?   ?   -',
    '',
  ]);
  assert.ok(lines.includes(LEGEND));
  assert.ok(lines.some((l) => l.startsWith('stale: node-d (last update 2026-01-01T11:50:00Z)')));
  const i = lines.indexOf('not established (5), worst first:');
  assert.ok(i > 0);
  assert.equal(lines[i + 1], '  node-a <-> node-c  failed      node-a: AUTHENTICATION_FAILED: peer identity CN=x does not match node-c; node-c: connecting  (down since 2026-01-01T11:00:00Z)');
});

test('the table without a mesh and without nodes says so', () => {
  assert.deepEqual(formatMeshView(buildMeshView([], undefined, NOW)), ['all IPsecNodes (no IPsecMesh): 0/0 pairs established, 0/0 nodes ready', '', 'no IPsecNode: no agent has registered (yet)']);
});

function capture(): { io: { out(l: string): void; err(l: string): void }; out: string[]; err: string[] } {
  const out: string[] = []; const err: string[] = [];
  return { io: { out: (l) => out.push(l), err: (l) => err.push(l) }, out, err };
}

test('usage: --control-socket with --cluster/--kubeconfig, and --mesh without them, are usage errors (exit 2)', async () => {
  const a = capture();
  assert.equal(await run(['status', '--cluster', '--control-socket', '/tmp/x'], a.io), EXIT_USAGE);
  assert.match(a.err[0] ?? '', /--control-socket asks the local agent/);
  const b = capture();
  assert.equal(await run(['status', '--mesh', 'default'], b.io), EXIT_USAGE);
  assert.match(b.err[0] ?? '', /--mesh needs --cluster or --kubeconfig PATH/);
  const c = capture();
  assert.equal(await run(['status', '--kubeconfig', '/nonexistent/kubeconfig'], c.io), EXIT_USAGE);
  assert.match(c.err[0] ?? '', /--kubeconfig \/nonexistent\/kubeconfig: no such file/);
});

test('kipsec status --help documents --cluster, --kubeconfig, --mesh and the cells', async () => {
  const c = capture();
  assert.equal(await run(['status', '--help'], c.io), EXIT_OK);
  const text = c.out.join('\n');
  for (const s of ['--cluster', '--kubeconfig PATH', '--mesh NAME', 'service account', 'XX failed']) assert.ok(text.includes(s), s);
});

/** A fake apiserver: the three lists the command reads; records the label selector used for Nodes. */
async function fakeApiserver(objs: { meshes: IPsecMesh[]; nodes: IPsecNode[]; kNodes: { name: string; labels: Record<string, string> }[] }, seen: string[]): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    seen.push(`${req.method ?? ''} ${u.pathname}${u.searchParams.get('labelSelector') ? `?labelSelector=${u.searchParams.get('labelSelector')!}` : ''}`);
    const list = (items: unknown[]): void => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ items, metadata: {} })); };
    if (u.pathname === '/apis/kipsec.io/v1alpha1/ipsecmeshes') return list(objs.meshes);
    if (u.pathname === '/apis/kipsec.io/v1alpha1/ipsecnodes') return list(objs.nodes);
    if (u.pathname === '/api/v1/nodes') {
      const [k, v] = (u.searchParams.get('labelSelector') ?? '=').split('=');
      return list(objs.kNodes.filter((n) => n.labels[k!] === v).map((n) => ({ metadata: { name: n.name, labels: n.labels } })));
    }
    res.writeHead(404, { 'content-type': 'application/json' }); res.end(JSON.stringify({ kind: 'Status', reason: 'NotFound', message: 'not here' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return { server, url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}` };
}

const tmpDirs: string[] = [];
after(() => { for (const d of tmpDirs) rmSync(d, { recursive: true, force: true }); });

function kubeconfig(url: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'kipsec-status-'));
  tmpDirs.push(dir);
  const f = join(dir, 'kubeconfig');
  writeFileSync(f, ['apiVersion: v1', 'kind: Config', 'clusters: [{name: c, cluster: {server: "' + url + '", insecure-skip-tls-verify: true}}]', 'users: [{name: u, user: {token: t}}]', 'contexts: [{name: x, context: {cluster: c, user: u}}]', 'current-context: x', ''].join('\n'));
  return f;
}

test('kipsec status --kubeconfig PATH reads IPsecMeshes, the Nodes its nodeSelector picks and the IPsecNodes, and prints the matrix (no control socket)', async () => {
  const seen: string[] = [];
  const nodes = fixture(Date.now());
  const { server, url } = await fakeApiserver({
    meshes: [mesh], nodes: [...nodes, node('other', {})],
    kNodes: [...nodes.map((n) => ({ name: n.metadata.name, labels: { 'kipsec.io/mesh': 'on' } })), { name: 'other', labels: {} }],
  }, seen);
  try {
    const c = capture();
    assert.equal(await run(['status', '--kubeconfig', kubeconfig(url)], c.io), EXIT_OK, c.err.join('\n'));
    assert.equal(c.out[0], 'mesh default (nodes kipsec.io/mesh=on): 1/6 pairs established, 2/4 nodes ready');
    assert.ok(c.out.some((l) => /^ {2}1 {2}node-a /.test(l)));
    assert.ok(!c.out.some((l) => l.includes('other')), 'a node the selector does not pick is not shown');
    assert.ok(seen.includes('GET /api/v1/nodes?labelSelector=kipsec.io/mesh=on'));
    const j = capture();
    assert.equal(await run(['status', '--kubeconfig', kubeconfig(url), '--json'], j.io), EXIT_OK);
    const data = JSON.parse(j.out.join('\n')) as { pairsExpected: number; matrix: Record<string, Record<string, string>>; mesh: { name: string } };
    assert.deepEqual([data.mesh.name, data.pairsExpected, data.matrix['node-a']?.['node-c']], ['default', 6, 'XX']);
    const m = capture();
    assert.equal(await run(['status', '--kubeconfig', kubeconfig(url), '--mesh', 'nope'], m.io), 1);
    assert.match(m.err[0] ?? '', /no IPsecMesh named nope \(there are: default\)/);
  } finally {
    server.close();
  }
});

test('kipsec status --kubeconfig PATH with the apiserver down exits 1 and says it could not read the mesh', async () => {
  const { server, url } = await fakeApiserver({ meshes: [], nodes: [], kNodes: [] }, []);
  await new Promise<void>((r) => server.close(() => r()));
  const c = capture();
  assert.equal(await run(['status', '--kubeconfig', kubeconfig(url)], c.io), 1);
  assert.match(c.err[0] ?? '', /^kipsec status: cannot read the mesh from the apiserver: /);
});
