// `kipsec` command line: dispatches to the command table; the only place that composes modules.
import { pathToFileURL } from 'node:url';
import { COMMANDS, EXIT_NOT_BUILT, EXIT_OK, EXIT_USAGE, type CliIo, type Command } from './commands.js';

const stdio: CliIo = {
  out: (line) => { process.stdout.write(`${line}\n`); },
  err: (line) => { process.stderr.write(`${line}\n`); },
};

/** `commands`: the table to list; tests pass their own (a placeholder command, which COMMANDS has none of). */
export function helpText(commands: readonly Command[] = COMMANDS): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const rows = commands.map((c) => {
    const note = c.run ? '' : ' (not available in this version)';
    return `  ${c.name.padEnd(width)}  ${c.summary}${note}`;
  });
  return ['usage: kipsec COMMAND [OPTIONS]', '', 'commands:', ...rows, '', 'kipsec COMMAND --help shows the options of one command.'].join('\n');
}

export async function run(argv: readonly string[], io: CliIo = stdio, commands: readonly Command[] = COMMANDS): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(helpText(commands));
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    io.err(`kipsec: unknown command "${name}"`);
    io.err(helpText(commands));
    return EXIT_USAGE;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(`usage: kipsec ${cmd.usage}\n\n${cmd.summary}${cmd.help ? `\n\n${cmd.help}` : ''}`);
    if (!cmd.run) io.out('\nnot available in this version');
    return EXIT_OK;
  }
  if (!cmd.run) {
    io.err(`kipsec ${cmd.name}: not available in this version; nothing was done`);
    return EXIT_NOT_BUILT;
  }
  return cmd.run(rest, io);
}

// Run when executed directly (`node --import tsx src/cli/main.ts status`); bin/kipsec.js imports run().
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await run(process.argv.slice(2));
}
