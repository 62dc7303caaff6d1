// Sums Vitest's JSON reports into the one line CI reads: `tests: N passed, N failed`.
// A tier whose report is missing (it crashed before reporting) counts as one failure.
const fs = require('node:fs');

let passed = 0;
let failed = 0;
const failures = [];
const firstLine = (text) =>
  String(text ?? '')
    .split('\n')[0]
    .slice(0, 300);
for (const file of process.argv.slice(2)) {
  if (!fs.existsSync(file)) {
    process.stderr.write(`no report at ${file}: counting the tier as failed\n`);
    failed += 1;
    continue;
  }
  const report = JSON.parse(fs.readFileSync(file, 'utf8'));
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  // A file that failed to load has no tests in it, so count it separately.
  for (const r of report.testResults ?? []) {
    if (r.status === 'failed' && r.assertionResults.length === 0) {
      failed += 1;
      failures.push(`${r.name}: ${firstLine(r.message)}`);
    }
    for (const a of r.assertionResults ?? []) {
      if (a.status === 'failed') {
        failures.push(`${r.name} > ${a.fullName}: ${firstLine((a.failureMessages ?? [])[0])}`);
      }
    }
  }
}
// The failures are named just above the last line, so the tail of a CI log says what broke.
for (const f of failures) process.stdout.write(`FAILED ${f}\n`);
process.stdout.write(`tests: ${passed} passed, ${failed} failed\n`);
process.exit(failed > 0 ? 1 : 0);
