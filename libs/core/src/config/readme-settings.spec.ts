import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SETTING_DOCS } from './config';

describe('README settings table', () => {
  it('documents every setting with its default', () => {
    const readme = readFileSync(join(__dirname, '../../../../README.md'), 'utf8');
    for (const s of SETTING_DOCS) {
      const line = readme.split('\n').find((l) => new RegExp(`^\\|\\s*\`${s.env}\`\\s*\\|`).test(l));
      expect(line, `${s.env} missing from the README settings table`).toBeDefined();
      if (s.default !== undefined) expect(line).toContain(`\`${s.default}\``);
    }
  });
});
