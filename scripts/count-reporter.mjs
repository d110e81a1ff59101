// node:test reporter that writes one JSON line of counts for a lane: passed, failed, skipped,
// todo, the names of failed tests, and line coverage when --experimental-test-coverage is on.
// Each failure carries the start of its error, so the summary at the end of a long CI log says why
// (CI keeps only the log's tail). Suites are not counted (their tests are); a skipped test is never counted as passed.
export default async function* countReporter(source) {
  const c = { passed: 0, failed: 0, skipped: 0, todo: 0, failures: [], coverage: null };
  for await (const ev of source) {
    const d = ev.data ?? {};
    if (ev.type === 'test:pass' || ev.type === 'test:fail') {
      if (d.details?.type === 'suite') { if (ev.type === 'test:fail' && d.details?.error?.failureType === 'hookFailed') c.failed++; continue; }
      if (d.skip !== undefined && d.skip !== false) c.skipped++;
      else if (d.todo !== undefined && d.todo !== false) c.todo++;
      else if (ev.type === 'test:pass') c.passed++;
      else { c.failed++; c.failures.push(`${d.name}${d.file ? ` (${d.file})` : ''}${why(d.details?.error)}`); }
    } else if (ev.type === 'test:coverage') {
      const t = d.summary?.totals;
      if (t) c.coverage = { lines: t.coveredLinePercent, branches: t.coveredBranchPercent, functions: t.coveredFunctionPercent };
    }
  }
  yield `${JSON.stringify(c)}\n`;
}

function why(error) {
  const e = error?.cause ?? error;
  const text = typeof e?.message === 'string' ? e.message : (e === undefined ? '' : String(e));
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean).slice(0, 4).join(' | ');
  return lines ? `\n      why: ${lines.length > 400 ? `${lines.slice(0, 400)}…` : lines}` : '';
}
