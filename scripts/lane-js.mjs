// The VM lanes' JavaScript: every .ts file of src/, test/, e2e/ and bench/ transpiled one to one
// (esbuild, no bundling, no type check) into .lane-js/ at the checkout's root, the layout tsc
// gives dist/. Why: under the kernel VM's TCG emulation `node --import tsx` spent ~50 s loading one
// cluster test file's imports (tsx's loader hooks resolve and read each of some 300 modules; warm
// cache or not), about a minute of every file's start; the same files as plain .js load in a few
// seconds. Type checking stays with `npm run build`/`tsc --noEmit`.
// At the checkout's depth (one folder down, as dist/), so paths that code finds relative to its own
// file (src/xfrm/native.ts's addon, test/lib/paths.ts walking up to package.json) resolve as in dist/.
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { buildSync } from 'esbuild';

const DIRS = ['src', 'test', 'e2e', 'bench'];
const SKIP = new Set(['e2e/k8s-build']);

function tsUnder(root, dir, out) {
  for (const name of readdirSync(join(root, dir)).sort()) {
    const rel = join(dir, name);
    if (SKIP.has(rel)) continue;
    if (statSync(join(root, rel)).isDirectory()) tsUnder(root, rel, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(join(root, rel));
  }
  return out;
}

/** Transpile the tree into root/.lane-js (emptied first); returns that folder. */
export function laneJs(root) {
  const outdir = join(root, '.lane-js');
  rmSync(outdir, { recursive: true, force: true });
  const entryPoints = DIRS.flatMap((d) => tsUnder(root, d, []));
  buildSync({ entryPoints, outdir, outbase: root, format: 'esm', platform: 'node', target: 'node20', logLevel: 'warning' });
  return outdir;
}

/** The .lane-js path of a repo file (e2e/cluster/x.test.ts → .lane-js/e2e/cluster/x.test.js). */
export function laneJsFile(root, file) {
  return join(root, '.lane-js', relative(root, file).replace(/\.ts$/, '.js'));
}
