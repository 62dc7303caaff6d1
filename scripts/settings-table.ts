/** Prints the README's settings table from the one list of settings in libs/core. */
import { SETTING_DOCS } from '@norm/core';

const rows = SETTING_DOCS.map(
  (s) => `| \`${s.env}\` | ${s.default === undefined ? '(unset)' : `\`${s.default}\``} | ${s.why} |`,
);
process.stdout.write(['| setting | default | why |', '| --- | --- | --- |', ...rows].join('\n') + '\n');
