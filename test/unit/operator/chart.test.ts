// charts/kipsec is generated from deploy/ and crds/ (deploy/gen-chart.ts); this fails when one is
// edited without regenerating the other (fix: `node --import tsx deploy/gen-chart.ts`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderedChart } from '../../../deploy/gen-chart.js';

const chart = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'charts', 'kipsec');

test('committed Helm chart templates and CRDs equal what deploy/gen-chart.ts renders', () => {
  for (const [p, text] of renderedChart()) assert.equal(readFileSync(join(chart, p), 'utf8'), text, p);
});
