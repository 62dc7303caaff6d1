import { DomainError } from '@norm/core';

/**
 * Host output Norm cannot read. Details name the format and the reason, and at most a short
 * excerpt of the offending line: the API may return ParseError details to a caller, and
 * host output is for operators.
 */
export function parseError(
  format: string,
  reason: string,
  extra: { line?: number; excerpt?: string } = {},
): DomainError {
  const details: Record<string, unknown> = { format, reason };
  if (extra.line !== undefined) details.line = extra.line;
  if (extra.excerpt !== undefined) details.excerpt = extra.excerpt.slice(0, 80);
  return new DomainError('ParseError', `cannot read ${format} output: ${reason}`, details);
}

/** Splits into lines, accepting CRLF (output copied through terminals and some SSH servers). */
export function splitLines(text: string): string[] {
  return text.split(/\r?\n/);
}
