// CA rotation phases judged from the IPsecNodes (src/operator/ca-rotation.ts; DESIGN.md §4).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IPsecNode } from '../../../src/api/types.js';
import { nodeCaViews, rotationProgress, rotationStatus } from '../../../src/operator/ca-rotation.js';

const OLD = 'a'.repeat(64);
const NEW = 'b'.repeat(64);
const ipn = (name: string, identity?: { trustedCAs?: string[]; issuerFingerprint?: string }): IPsecNode => ({
  apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name }, spec: { endpoint: { address: '192.0.2.1' }, ...(identity ? { identity } : {}) },
});

test('Trusting is complete only when every node trusts the new CA; a node that reports nothing holds it, named with why', () => {
  const nodes = nodeCaViews([ipn('n2', { trustedCAs: [OLD], issuerFingerprint: OLD }), ipn('n1', { trustedCAs: [OLD, NEW], issuerFingerprint: OLD }), ipn('n3')]);
  const p = rotationProgress('Trusting', NEW, nodes);
  assert.deepEqual([p.complete, p.done, p.waiting.map((w) => w.name)], [false, ['n1'], ['n2', 'n3']]);
  assert.match(p.waiting[0]!.why, /does not trust the new CA yet/);
  assert.match(p.waiting[1]!.why, /reports no trusted CAs/);
  const all = rotationProgress('Trusting', NEW, nodeCaViews([ipn('n1', { trustedCAs: [OLD, NEW] }), ipn('n2', { trustedCAs: [NEW, OLD] })]));
  assert.equal(all.complete, true);
});

test('Reissuing is complete only when every node presents a certificate issued by the new CA; trusting it is not enough', () => {
  const p = rotationProgress('Reissuing', NEW, nodeCaViews([ipn('n1', { trustedCAs: [NEW, OLD], issuerFingerprint: NEW }), ipn('n2', { trustedCAs: [NEW, OLD], issuerFingerprint: OLD })]));
  assert.deepEqual([p.complete, p.done, p.waiting.map((w) => w.name)], [false, ['n1'], ['n2']]);
  assert.match(p.waiting[0]!.why, /still presents a certificate from the old CA/);
  assert.equal(rotationProgress('Reissuing', NEW, nodeCaViews([ipn('n1', { issuerFingerprint: NEW })])).complete, true);
});

test('with no node at all a phase is complete: nobody can be cut off', () => {
  assert.equal(rotationProgress('Trusting', NEW, []).complete, true);
  assert.equal(rotationProgress('Reissuing', NEW, []).complete, true);
});

test('the mesh status of a rotation counts the nodes, names at most 10 it waits for, and says why for the first', () => {
  const many = Array.from({ length: 13 }, (_, i) => ipn(`n${String(i).padStart(2, '0')}`, { trustedCAs: [OLD] }));
  const st = rotationStatus(rotationProgress('Trusting', NEW, nodeCaViews([...many, ipn('ok', { trustedCAs: [OLD, NEW] })])), NEW, Date.parse('2026-12-06T10:00:00.000Z'));
  assert.equal(st.phase, 'Trusting');
  assert.deepEqual([st.nodesDone, st.nodesTotal, st.waitingFor?.length, st.startedAt, st.newCaFingerprint], [1, 14, 10, '2026-12-06T10:00:00Z', NEW]);
  assert.equal(st.message, 'Trusting: 1/14 nodes trust the new CA; waiting for n00, n01, n02, n03, n04 and 8 more (n00 does not trust the new CA yet)');
  const done = rotationStatus(rotationProgress('Reissuing', NEW, nodeCaViews([ipn('x', { issuerFingerprint: NEW })])), NEW, undefined);
  assert.deepEqual([done.waitingFor, done.startedAt, done.message], [undefined, undefined, 'Reissuing: 1/1 nodes present a certificate from the new CA']);
});
