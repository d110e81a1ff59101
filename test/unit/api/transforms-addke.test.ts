// RFC 9370 additional key exchanges in the API's proposal syntax (strongSwan's keN_ prefix): an
// IPsecMesh/IPsecTunnel proposal such as aes256gcm16-prfsha384-x25519-ke1_mlkem768 validates; the
// agent accepts it (test/unit/agent/config.test.ts) and the engine runs it (src/ike/steps).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { proposal } from '../../../src/api/fields.js';
import type { Node, Problem } from '../../../src/api/schema.js';
import { ALL_TOKENS, TRANSFORMS, tokensOf } from '../../../src/api/transforms.js';
import { validateNode } from '../../../src/api/validate.js';

const problems = (proto: 'ike' | 'esp', text: string): string[] => {
  const out: Problem[] = [];
  validateNode(proposal(proto) as Node<unknown>, text, 'p', 'cluster', out);
  return out.map((p) => p.message);
};

test('RFC 9370 ADDKE tokens: ke1_..ke7_ with mlkem512/768/1024 or none, none of them weak', () => {
  const addke = tokensOf('addke');
  assert.equal(addke.length, 7 * 4);
  for (const n of [1, 2, 3, 4, 5, 6, 7]) for (const m of ['mlkem512', 'mlkem768', 'mlkem1024', 'none']) assert.ok(addke.includes(`ke${n}_${m}`));
  assert.ok(TRANSFORMS.filter((x) => x.kind === 'addke').every((x) => !x.weak));
  // ML-KEM alone as the IKE_SA_INIT key exchange is not something the engine does.
  assert.ok(!ALL_TOKENS.includes('mlkem768'));
});

test('hybrid proposals validate for IKE and ESP (x25519 plus ML-KEM as ADDKE1, optional ADDKE2)', () => {
  assert.deepEqual(problems('ike', 'aes256gcm16-prfsha384-x25519-ke1_mlkem768'), []);
  assert.deepEqual(problems('ike', 'aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none-ke2_mlkem1024-ke2_none'), []);
  assert.deepEqual(problems('esp', 'aes256gcm16-x25519-ke1_mlkem768'), []);
});

test('ADDKE spellings outside ke1..ke7 and ML-KEM are unknown transforms', () => {
  assert.match(problems('ike', 'aes256gcm16-prfsha384-x25519-ke8_mlkem768').join(), /unknown transform "ke8_mlkem768"/);
  assert.match(problems('ike', 'aes256gcm16-prfsha384-mlkem768').join(), /unknown transform "mlkem768"/);
  // Still an IKE proposal without a Transform Type 4 method: the ADDKE token does not count as one.
  assert.match(problems('ike', 'aes256gcm16-prfsha384-ke1_mlkem768').join(), /needs a key exchange group/);
});
