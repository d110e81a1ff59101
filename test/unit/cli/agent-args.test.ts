// `kipsec agent` argument checks: cluster mode and standalone mode exclude each other's options,
// and every bad value is refused with one line naming it, before anything is opened.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runAgent } from '../../../src/cli/agent.js';
import { EXIT_FAILURE, EXIT_USAGE } from '../../../src/cli/commands.js';

async function run(args: string[]): Promise<{ code: number; err: string }> {
  const err: string[] = [];
  const code = await runAgent(args, { out: () => undefined, err: (l) => err.push(l) });
  return { code, err: err.join('\n') };
}

test('kipsec agent needs a mode: --node-name NAME (cluster) or --standalone --config FILE', async () => {
  assert.deepEqual(await run([]), { code: EXIT_USAGE, err: 'kipsec agent: give --node-name NAME (cluster mode) or --standalone --config FILE' });
});

test('cluster-mode values are checked before anything starts: node name, node IP, metrics port', async () => {
  assert.match((await run(['--node-name', 'Node_1'])).err, /"Node_1" is not a Kubernetes node name/);
  assert.match((await run(['--node-name', 'n1', '--node-ip', '192.0.2.300'])).err, /--node-ip "192\.0\.2\.300" is not an IP address/);
  assert.match((await run(['--node-name', 'n1', '--metrics-port', '70000'])).err, /--metrics-port must be a port number \(0 turns it off\)/);
  for (const a of [['--node-name', 'Node_1'], ['--node-name', 'n1', '--config', 'x.yaml']]) assert.equal((await run(a)).code, EXIT_USAGE);
  assert.match((await run(['--node-name', 'n1', '--config', 'x.yaml'])).err, /--config is for --standalone/);
});

test('--standalone refuses cluster-mode options, naming the first', async () => {
  const r = await run(['--standalone', '--config', 'x.yaml', '--kubeconfig', 'k']);
  assert.deepEqual(r, { code: EXIT_USAGE, err: 'kipsec agent: --kubeconfig is for cluster mode; --standalone takes its tunnels from --config' });
});

test('cluster mode takes --datapath kernel, userspace and auto: the argument checks pass (here it stops at the missing cluster credentials)', async () => {
  for (const d of ['kernel', 'userspace', 'auto']) {
    const r = await run(['--node-name', 'n1', '--datapath', d, '--metrics-port', '0']);
    assert.equal(r.code, EXIT_FAILURE, r.err);
    assert.match(r.err, /cannot load the cluster credentials/);
  }
  assert.match((await run(['--node-name', 'n1', '--datapath', 'ebpf'])).err, /--datapath must be kernel, userspace or auto/);
});

test('--retransmit-timeout/-base/-tries are checked before anything starts, each refusal naming its flag (charon\'s retransmit_* bounds kept sane)', async () => {
  const bad: [string[], RegExp][] = [
    [['--retransmit-timeout', '4'], /--retransmit-timeout: invalid duration "4"/],
    [['--retransmit-timeout', '100ms'], /--retransmit-timeout 100ms is outside 500ms–60s/],
    [['--retransmit-timeout', '2m'], /--retransmit-timeout 2m is outside 500ms–60s/],
    [['--retransmit-base', '0.5'], /--retransmit-base 0.5 is not a number from 1 to 4/],
    [['--retransmit-base', '1e1'], /--retransmit-base 1e1 is not a number from 1 to 4/],
    [['--retransmit-tries', '-1'], /--retransmit-tries -1 is not a whole number from 0 to 20/],
    [['--retransmit-tries', '2.5'], /--retransmit-tries 2.5 is not a whole number from 0 to 20/],
  ];
  for (const [flags, msg] of bad) {
    for (const mode of [['--node-name', 'n1'], ['--standalone', '--config', 'x.yaml']]) {
      const r = await run([...mode, ...flags]);
      assert.equal(r.code, EXIT_USAGE, `${flags.join(' ')}: ${r.err}`);
      assert.match(r.err, msg);
    }
  }
});
