import { describe, expect, it } from 'vitest';
import { splitShellWords } from './shell-words.sim';

describe('splitShellWords', () => {
  it('splits like sh: quotes, escapes, empty words', () => {
    expect(splitShellWords(`sudo -n xl create '/var/lib/norm/domains/a b.cfg'`)).toEqual({
      ok: true,
      words: ['sudo', '-n', 'xl', 'create', '/var/lib/norm/domains/a b.cfg'],
      env: {},
    });
    expect(splitShellWords(`norm-argv 'it'\\''s' "a \\"q\\" \\$x \\n" '' a\\ b`)).toEqual({
      ok: true,
      words: ['norm-argv', "it's", 'a "q" $x \\n', '', 'a b'],
      env: {},
    });
  });

  it('takes leading unquoted assignments as environment', () => {
    expect(splitShellWords(`LC_ALL=C sudo -n xl list`)).toEqual({
      ok: true,
      words: ['sudo', '-n', 'xl', 'list'],
      env: { LC_ALL: 'C' },
    });
    expect(splitShellWords(`'A=b' x`)).toEqual({ ok: true, words: ['A=b', 'x'], env: {} });
  });

  it.each([';', '|', '&', '$(id)', '`id`', '(x)', '<x', '>x', '*', '?', '#c', '~/x', 'a\nb', '"$HOME"'])(
    'refuses unquoted %j',
    (bad) => {
      expect(splitShellWords(`xl list ${bad}`).ok).toBe(false);
    },
  );

  it('refuses unterminated quotes', () => {
    expect(splitShellWords(`xl 'list`)).toEqual({
      ok: false,
      error: 'Syntax error: Unterminated quoted string',
    });
  });
});
