import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { quoteArg, quoteArgv } from './shell-quote';

function throughSh(argv: readonly string[]): string[] {
  const out = execFileSync('/bin/sh', ['-c', `printf '%s\\0' ${quoteArgv(argv)}`]);
  const parts = out.toString('utf8').split('\0');
  // printf ends every argument with NUL, so the last piece is the empty tail.
  expect(parts.pop()).toBe('');
  return parts;
}

const hostile = fc.constantFrom(
  "'",
  '"',
  '\\',
  ';',
  '$(id)',
  '`id`',
  '${HOME}',
  '$HOME',
  '\n',
  '\t',
  ' ',
  '*',
  '?',
  '[a]',
  '-',
  '--',
  '-rf',
  '~',
  'A=b',
  '|',
  '&',
  '>',
  '<',
  '#',
  '!',
  '{a,b}',
  '\r',
  'é',
  '🙂',
  '\u00a0',
);

const chunk = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.string({ unit: 'grapheme', maxLength: 4 }),
  hostile,
);

const argument = fc
  .array(chunk, { maxLength: 6 })
  .map((parts) => parts.join(''))
  .filter((s) => !s.includes('\0'));

describe('quoteArg', () => {
  it('leaves plain words bare and quotes everything else', () => {
    expect(quoteArg('xl')).toBe('xl');
    expect(quoteArg('/dev/vg0/web-1')).toBe('/dev/vg0/web-1');
    expect(quoteArg('vg_name,vg_size')).toBe('vg_name,vg_size');
    expect(quoteArg('--noheadings')).toBe('--noheadings');
    expect(quoteArg('|')).toBe("'|'");
    expect(quoteArg('a b')).toBe("'a b'");
    expect(quoteArg("it's")).toBe("'it'\\''s'");
    expect(quoteArg('A=b')).toBe("'A=b'");
    expect(quoteArg('~root')).toBe("'~root'");
    expect(quoteArg('*')).toBe("'*'");
  });

  it('renders the empty string as an empty quoted word', () => {
    expect(quoteArg('')).toBe("''");
    expect(throughSh(['', 'x', ''])).toEqual(['', 'x', '']);
  });

  it('refuses NUL bytes and unpaired surrogates with UnsafeArgument', () => {
    expect(() => quoteArg('a\0b')).toThrow(expect.objectContaining({ code: 'UnsafeArgument' }));
    expect(() => quoteArg('\uD800')).toThrow(expect.objectContaining({ code: 'UnsafeArgument' }));
    expect(() => quoteArgv(['xl', 'x\0'])).toThrow(
      expect.objectContaining({
        code: 'UnsafeArgument',
        details: expect.objectContaining({ index: 1 }) as unknown,
      }) as Error,
    );
  });

  it('does not echo the refused value in the error', () => {
    try {
      quoteArg('secret\0');
      expect.unreachable();
    } catch (err) {
      expect(JSON.stringify(err)).not.toContain('secret');
      expect((err as Error).message).not.toContain('secret');
    }
  });

  it('refuses an empty command line', () => {
    expect(() => quoteArgv([])).toThrow(expect.objectContaining({ code: 'UnsafeArgument' }));
  });
});

describe('quoteArgv through a real /bin/sh', () => {
  it('keeps hostile arguments intact', () => {
    const argv = ["it's", '$(touch /tmp/pwned)', '`id`', 'a b\tc\nd', '*', '-n', 'A=b', '\\', '"', "''"];
    expect(throughSh(argv)).toEqual(argv);
  });

  it('delivers every argv element as one intact argument (property)', () => {
    fc.assert(
      fc.property(fc.array(argument, { minLength: 1, maxLength: 5 }), (argv) => {
        expect(throughSh(argv)).toEqual(argv);
      }),
      { numRuns: 200 },
    );
    // 200 real /bin/sh processes: well under a second on an idle machine, far more on a busy one.
  }, 30_000);
});
