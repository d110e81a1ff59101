// crds/*.yaml are generated from src/api/resources.ts; this fails when someone edits one without
// the other (fix: `node --import tsx src/api/gen-crds.ts`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALL_KINDS, buildCrd, crdFileName } from '../../../src/api/crd.js';
import { renderCrd } from '../../../src/api/gen-crds.js';

const crds = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'crds');

for (const k of ALL_KINDS) {
  test(`committed crds/${crdFileName(k)} equals the generated output`, () => {
    assert.equal(readFileSync(join(crds, crdFileName(k)), 'utf8'), renderCrd(k));
  });
}

test('every CRD has status subresource, short name, category kipsec and printer columns', () => {
  for (const k of ALL_KINDS) {
    const c = buildCrd(k);
    const v = c.spec.versions[0]!;
    assert.deepEqual(v.subresources, { status: {} });
    assert.ok(c.spec.names.shortNames.length > 0);
    assert.deepEqual(c.spec.names.categories, ['kipsec']);
    assert.ok(v.additionalPrinterColumns.some((x) => x.name === 'Ready'));
  }
});
