// Sums Vitest's JSON reports into the one line CI reads: `tests: N passed, N failed`.
// A tier whose report is missing (it crashed before reporting) counts as one failure.
const fs = require('node:fs');

let passed = 0;
let failed = 0;
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
  failed += (report.testResults ?? []).filter(
    (r) => r.status === 'failed' && r.assertionResults.length === 0,
  ).length;
}
process.stdout.write(`tests: ${passed} passed, ${failed} failed\n`);
process.exit(failed > 0 ? 1 : 0);
