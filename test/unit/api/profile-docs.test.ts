// The examples in docs/profiles/*.md are the ones users copy: every IPsecTunnel YAML block there
// must pass the standalone schema as written, run in route mode with its profile's MTU, and every
// refusal quoted there must be the one the validator gives (its first part, up to the document).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseTunnelConfig, validateTunnel } from '../../../src/api/config.js';
import { PRESETS, effectiveTunnel } from '../../../src/api/profiles/index.js';
import type { Profile } from '../../../src/api/transforms.js';
import { goodTunnelSpec } from './cases.js';

const page = (p: string): string => readFileSync(fileURLToPath(new URL(`../../../docs/profiles/${p}.md`, import.meta.url)), 'utf8');
const blocks = (md: string, lang: string): string[] => [...md.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);

for (const p of ['aws', 'gcp', 'azure'] as const satisfies readonly Profile[]) {
  test(`docs/profiles/${p}.md: its IPsecTunnel example validates and runs in route mode with the ${p} preset`, () => {
    const yaml = blocks(page(p), 'yaml');
    assert.ok(yaml.length > 0);
    for (const y of yaml) {
      const r = parseTunnelConfig(y, 'standalone');
      assert.deepEqual(r.problems, []);
      for (const t of r.tunnels) {
        assert.equal(t.spec.profile, p);
        const e = effectiveTunnel(t.spec);
        assert.deepEqual([e.mode, e.localTs, e.xfrmInterface?.mtu], ['route', ['0.0.0.0/0'], PRESETS[p].mtu]);
      }
    }
  });

  test(`docs/profiles/${p}.md: the refusal it quotes is the validator's`, () => {
    const quoted = blocks(page(p), '').map((b) => b.trim()).find((b) => b.includes(`is not accepted by ${p}`));
    assert.ok(quoted, 'a quoted refusal');
    const m = /^spec\.(ike|esp)\.proposals: proposal (\S+) is not accepted by \w+ \((\w+);/.exec(quoted);
    assert.ok(m, quoted);
    const [, proto, proposal, token] = m;
    const spec = { ...goodTunnelSpec(), profile: p, xfrmInterface: { ifId: 9 }, [proto!]: { proposals: [proposal!] } };
    const ps = validateTunnel({ apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecTunnel', metadata: { name: 'd' }, spec }, 'cluster');
    assert.equal(ps.length, 1, JSON.stringify(ps));
    assert.equal(ps[0]!.path, `spec.${proto!}.proposals`);
    assert.ok(ps[0]!.message.startsWith(`proposal ${proposal!} is not accepted by ${p} (${token!}; `), ps[0]!.message);
  });
}
