// `kipsec diagnose`: one line per check, exit 0 only when every check passed.
import { diagnose } from '../agent/diagnose.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type CliIo } from './commands.js';

export async function runDiagnose(args: readonly string[], io: CliIo): Promise<number> {
  if (args.length > 0) { io.err(`kipsec diagnose: unexpected argument ${args[0]!}`); return EXIT_USAGE; }
  const checks = await diagnose();
  const w = Math.max(...checks.map((c) => c.name.length));
  for (const c of checks) io.out(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.name.padEnd(w)}  ${c.detail}`);
  return checks.every((c) => c.ok) ? EXIT_OK : EXIT_FAILURE;
}
