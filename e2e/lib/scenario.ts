// Tests that must run inside a fresh network namespace re-run their own file there: the parent
// calls runScenario(), the child (XFRM_SCENARIO set) runs one named scenario and prints its result
// as the last stdout line. The child reports failures itself, because a rejection surfacing inside
// the netlink addon's callback would otherwise abort the process without a message.
import assert from 'node:assert/strict';
import type { Netns } from './netns.js';

export type Scenarios = Readonly<Record<string, () => Promise<unknown>>>;

/** In the child: run the scenario named by XFRM_SCENARIO and exit. Returns false in the parent. */
export async function scenarioChild(scenarios: Scenarios): Promise<boolean> {
  const which = process.env['XFRM_SCENARIO'];
  if (!which) return false;
  const fn = scenarios[which];
  if (!fn) throw new Error(`unknown scenario ${which}`);
  await fn().then((res) => { console.log(JSON.stringify(res)); process.exit(0); }, (e: unknown) => { console.error(e); process.exit(1); });
  return true;
}

/**
 * `node` arguments that run `file`: a .ts source through tsx, or the .js the VM lanes run from
 * .lane-js/ (scripts/lane-js.mjs) as it is, without tsx's loader.
 */
export function nodeArgsFor(file: string): string[] {
  return file.endsWith('.ts') ? ['--import', 'tsx', file] : [file];
}

/** In the parent: run `file`'s scenario inside ns and return the child's JSON result. */
export async function runScenario(ns: Netns, file: string, scenario: string, opts: { env?: readonly string[]; timeoutMs?: number } = {}): Promise<unknown> {
  const r = await ns.run('env', [`XFRM_SCENARIO=${scenario}`, ...(opts.env ?? []), process.execPath, ...nodeArgsFor(file)], { timeoutMs: opts.timeoutMs ?? 240_000, check: false });
  assert.equal(r.code, 0, `scenario ${scenario} in ${ns.name} exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? 'null');
}
