// `kipsec operator` started while the apiserver does not answer yet (a control-plane restart, a
// node booting before it): it keeps retrying until SIGTERM instead of exiting, which in a pod is a
// crash loop. It exited 13 (an unsettled top-level await) because every timer it had was unref'd.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoPath } from '../../lib/paths.js';
import { scratchDir } from '../../lib/tmp.js';

test('the operator keeps retrying an apiserver that refuses connections until SIGTERM, then exits 0 (no exit 13 crash loop)', async (t) => {
  // A port with nothing listening: bind one, note it, close it.
  const port = await new Promise<number>((resolve) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); }); });
  const dir = scratchDir('kipsec-op-start-');
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:${port}', insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n`);
  const main = pathToFileURL(repoPath('src', 'cli', 'main.ts')).href;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `const { run } = await import(${JSON.stringify(main)}); process.exitCode = await run(['operator', '--kubeconfig', ${JSON.stringify(kubeconfig)}, '--namespace', 'kipsec-system', '--health-port', '0']);`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  let gone = false;
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => { gone = true; resolve(code); }));
  // Killed however the test ends: a failed assertion left it running and the lane waiting.
  t.after(() => { if (!gone) child.kill('SIGKILL'); });
  // Until it has tried the apiserver (slow under tsx on a loaded machine), then a few seconds more.
  for (let i = 0; i < 600 && !gone && !/ECONNREFUSED/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
  const early = await Promise.race([exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 3_000))]);
  if (early !== 'running') assert.fail(`exited ${early} while the apiserver was unreachable:\n${out.slice(-2000)}`);
  assert.match(out, /ECONNREFUSED/, 'it tried the apiserver');
  child.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 20_000))]);
  if (code === 'hung') { child.kill('SIGKILL'); assert.fail(`no exit within 20 s of SIGTERM:\n${out.slice(-2000)}`); }
  assert.equal(code, 0, out.slice(-2000));
});
