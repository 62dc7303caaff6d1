import { DomainError } from '@norm/core';

/**
 * Quoting for a POSIX sh on the far side of SSH: the remote command line is re-split by the
 * login shell, so each argv element must arrive as exactly one word with no expansion.
 *
 * Words made only of these characters mean the same quoted or not in sh, so they stay bare
 * for readable logs. `=` is left out on purpose: `A=b cmd` is an assignment, not a word,
 * when it comes first. `~` (tilde expansion), globs, and anything non-ASCII are quoted.
 */
const BARE_WORD = /^[A-Za-z0-9_./:@%+,-]+$/;

// A C string ends at NUL, so such an argument cannot reach the far side intact; a lone UTF-16
// surrogate cannot be encoded as UTF-8 and would arrive as U+FFFD.
const UNSENDABLE = /\0|\p{Cs}/u;

export function quoteArg(s: string): string {
  if (UNSENDABLE.test(s)) {
    throw new DomainError('UnsafeArgument', 'argument contains a NUL byte or an unpaired surrogate', {
      length: s.length,
    });
  }
  if (s === '') return "''";
  if (BARE_WORD.test(s)) return s;
  // Inside '…' sh takes every byte literally; a quote is closed, escaped, and reopened.
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function quoteArgv(argv: readonly string[]): string {
  if (argv.length === 0) {
    throw new DomainError('UnsafeArgument', 'empty command line');
  }
  return argv
    .map((arg, index) => {
      try {
        return quoteArg(arg);
      } catch (err) {
        if (err instanceof DomainError) {
          throw new DomainError(err.code, err.message, { ...err.details, index });
        }
        throw err;
      }
    })
    .join(' ');
}
