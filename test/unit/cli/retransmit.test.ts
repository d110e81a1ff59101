// The IKE retransmission flags become the engine's options (src/cli/retransmit.ts); unset flags
// leave the engine's defaults (charon's 4 s, 1.8, 5) in place.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs } from '../../../src/cli/args.js';
import { RETRANSMIT_FLAGS, retransmitOptions } from '../../../src/cli/retransmit.js';

const parse = (args: string[]) => parseArgs(args, { values: [...RETRANSMIT_FLAGS], booleans: [] });

test('retransmit flags map to the engine\'s retransmitTimeoutMs/Base/Tries; unset ones are absent, not defaulted here', () => {
  assert.deepEqual(retransmitOptions(parse([])), {});
  assert.deepEqual(retransmitOptions(parse(['--retransmit-timeout', '3s', '--retransmit-base', '1.8', '--retransmit-tries', '3'])),
    { retransmitTimeoutMs: 3000, retransmitBase: 1.8, retransmitTries: 3 });
  assert.deepEqual(retransmitOptions(parse(['--retransmit-timeout=1500ms'])), { retransmitTimeoutMs: 1500 });
  assert.deepEqual(retransmitOptions(parse(['--retransmit-tries', '0', '--retransmit-base', '1'])), { retransmitBase: 1, retransmitTries: 0 });
});
