// The node-identity approval policy (DESIGN.md §4), rule by rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCsr, generateKeyPair, parseCsr, type ParsedCsr } from '../../../src/pki/index.js';
import { decideCsr, type PolicyContext, type LiveIdentity } from '../../../src/operator/csr-policy.js';
import type { Csr } from '../../../src/operator/kinds.js';

const AGENT = 'system:serviceaccount:kipsec-system:kipsec-agent';
const csrObj = (over: Partial<Csr['spec']> = {}): Csr => ({ metadata: { name: 'c' }, spec: { request: '', signerName: 'kipsec.io/node-identity', username: AGENT, usages: ['digital signature', 'client auth', 'server auth'], ...over } });
const ctx = (live: LiveIdentity[] = []): PolicyContext => ({
  agentUsername: AGENT, nowMs: 1000,
  nodeAddresses: (n) => (n === 'n1' ? ['192.0.2.1'] : undefined),
  liveIdentities: (n) => (n === 'n1' ? live : []),
});
const csrFor = async (name: string, ips: string[] = []): Promise<ParsedCsr> => parseCsr(await createCsr(await generateKeyPair(), name, ips));

test('approves the agent asking for an existing node with its own IP', async () => {
  const d = decideCsr(csrObj(), await csrFor('n1', ['192.0.2.1']), ctx());
  assert.equal(d.verdict, 'approve');
});

test('denies another account, naming it', async () => {
  const d = decideCsr(csrObj({ username: 'system:serviceaccount:default:default' }), await csrFor('n1'), ctx());
  assert.deepEqual([d.verdict, d.reason], ['deny', 'UnauthorizedRequester']);
  assert.match(d.message, /default:default/);
});

test('denies a node that does not exist', async () => {
  const d = decideCsr(csrObj(), await csrFor('ghost'), ctx());
  assert.deepEqual([d.verdict, d.reason], ['deny', 'NodeNotFound']);
});

test("denies a pod-bound token asking for another node's identity", async () => {
  const d = decideCsr(csrObj({ extra: { 'authentication.kubernetes.io/node-name': ['n2'] } }), await csrFor('n1'), ctx());
  assert.deepEqual([d.verdict, d.reason], ['deny', 'NodeMismatch']);
});

test("denies an IP SAN that is not the node's", async () => {
  const d = decideCsr(csrObj(), await csrFor('n1', ['10.9.9.9']), ctx());
  assert.deepEqual([d.verdict, d.reason], ['deny', 'IPNotOfNode']);
});

test('denies disallowed usages', async () => {
  const d = decideCsr(csrObj({ usages: ['cert sign'] }), await csrFor('n1'), ctx());
  assert.deepEqual([d.verdict, d.reason], ['deny', 'UnsupportedUsages']);
});

const otherKey = (notAfterMs = 5000): LiveIdentity => ({ publicKeyFingerprint: 'other', notAfterMs, source: 'CSR old', csrName: 'old' });
const podOn = (node: string): Partial<Csr['spec']> => ({ extra: { 'authentication.kubernetes.io/node-name': [node] } });

test('renewal with the same key is approved, and so is a new key once the old identity expired', async () => {
  const p = await csrFor('n1');
  const same = decideCsr(csrObj(), p, ctx([{ publicKeyFingerprint: p.publicKeyFingerprint, notAfterMs: 5000, source: 'CSR old', csrName: 'old' }]));
  assert.deepEqual([same.verdict, same.verdict === 'approve' && same.supersedes], ['approve', []]);
  assert.equal(decideCsr(csrObj(), p, ctx([otherKey(999)])).verdict, 'approve');
});

// A node rebooted with a wiped state directory comes back with a new key; the apiserver vouches
// (pod-bound token) that the requester runs on the node, so it need not wait out the old certificate.
test('approves a new key from a pod bound to the node while another key is live; the approval says what it supersedes', async () => {
  const d = decideCsr(csrObj(podOn('n1')), await csrFor('n1'), ctx([otherKey()]));
  assert.ok(d.verdict === 'approve', d.message);
  assert.deepEqual(d.supersedes.map((l) => l.csrName), ['old']);
  assert.match(d.message, /in a pod on that node; its new key supersedes .*CSR old, valid until 1970-01-01T00:00:05\.000Z/);
});

// Without a pod-bound node the requester cannot prove where it runs: a stolen or unbound agent token
// must not replace the identity of a node that has one.
test('denies a new key without a pod-bound node while another key is live (IdentityInUse), telling the admin what to do', async () => {
  const d = decideCsr(csrObj(), await csrFor('n1'), ctx([otherKey(), { publicKeyFingerprint: 'third', notAfterMs: 7000, source: 'approved CSR newer', csrName: 'newer' }]));
  assert.deepEqual([d.verdict, d.reason], ['deny', 'IdentityInUse']);
  assert.match(d.message, /CSR old, valid until 1970-01-01T00:00:05\.000Z; approved CSR newer/);
  assert.match(d.message, /not come from a pod bound to node n1/);
  assert.match(d.message, /wait until 1970-01-01T00:00:07\.000Z/, 'the latest expiry');
  assert.match(d.message, /kubectl delete csr old newer/);
});

test('a pod bound to another node still gets NodeMismatch, not a superseding approval', async () => {
  const d = decideCsr(csrObj(podOn('n2')), await csrFor('n1'), ctx([otherKey()]));
  assert.deepEqual([d.verdict, d.reason], ['deny', 'NodeMismatch']);
});

test('denies a garbage request as invalid', async () => {
  const d = decideCsr(csrObj(), new Error('not a PKCS#10 request'), ctx());
  assert.deepEqual([d.verdict, d.reason], ['deny', 'InvalidRequest']);
});
