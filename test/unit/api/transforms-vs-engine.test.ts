// The CRD/config validator (src/api/transforms.ts) and the IKE engine's policy parser
// (src/ike/policy/keywords.ts) keep separate token tables because src/api may not import src/ike
// (DESIGN.md §7). This test holds them together: every token the API accepts is one the engine
// parses with the same weak/ok judgement, and every token the engine implements is accepted by
// the API, so `kubectl apply` never admits a proposal the agent would refuse, nor the reverse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TRANSFORMS } from '../../../src/api/transforms.js';
import { KEYWORDS, keywordBySpelling } from '../../../src/ike/policy/index.js';

test('every proposal token the API accepts is one the IKE engine implements, with the same weak verdict', () => {
  const problems: string[] = [];
  for (const t of TRANSFORMS) {
    const k = keywordBySpelling(t.token);
    if (!k) { problems.push(`${t.token}: accepted by src/api, unknown to src/ike/policy`); continue; }
    if (k.status === 'unsupported') problems.push(`${t.token}: accepted by src/api, but the engine does not implement it`);
    const engineWeak = k.status === 'weak' || k.status === 'refused';
    if (engineWeak !== t.weak) problems.push(`${t.token}: src/api says ${t.weak ? 'weak' : 'ok'}, engine says ${k.status}`);
  }
  assert.deepEqual(problems, []);
});

test('every transform the IKE engine implements is accepted by the API', () => {
  const api = new Set(TRANSFORMS.map((t) => t.token));
  const missing = KEYWORDS.filter((k) => k.status === 'ok' || k.status === 'weak')
    .filter((k) => !api.has(k.name))
    .map((k) => k.name);
  assert.deepEqual(missing, []);
});
