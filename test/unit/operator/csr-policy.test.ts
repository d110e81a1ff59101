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

test('denies a second live identity with another key; allows renewal with the same key or after expiry', async () => {
  const p = await csrFor('n1');
  assert.equal(decideCsr(csrObj(), p, ctx([{ publicKeyFingerprint: 'other', notAfterMs: 5000, source: 'csr x' }])).reason, 'IdentityInUse');
  assert.equal(decideCsr(csrObj(), p, ctx([{ publicKeyFingerprint: p.publicKeyFingerprint, notAfterMs: 5000, source: 'csr x' }])).verdict, 'approve');
  assert.equal(decideCsr(csrObj(), p, ctx([{ publicKeyFingerprint: 'other', notAfterMs: 999, source: 'csr x' }])).verdict, 'approve');
});

test('denies a garbage request as invalid', async () => {
  const d = decideCsr(csrObj(), new Error('not a PKCS#10 request'), ctx());
  assert.deepEqual([d.verdict, d.reason], ['deny', 'InvalidRequest']);
});
