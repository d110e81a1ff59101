// `node --import tsx e2e/lib/build-agent-bundle.ts OUT`: the CLI bundle the VM lanes' tests run
// (e2e/vm/agent-harness.ts buildAgentBundle, npm packages inlined), built once on the host instead
// of by every test process inside the VM, where esbuild itself runs under TCG. Prints the entry point.
import { resolve } from 'node:path';
import { buildAgentBundle } from '../vm/agent-harness.js';

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: build-agent-bundle.ts OUT (a folder two levels below the checkout)\n');
  process.exit(2);
}
process.stdout.write(`${buildAgentBundle(resolve(out), 'bundle')}\n`);
