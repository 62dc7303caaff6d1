import { describe, expect, it } from 'vitest';
import { requestIdFrom } from './request-id';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('requestIdFrom', () => {
  it.each(['abc-123', 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6', 'ci.job:42_retry', 'x'.repeat(128)])(
    'honours the safe token %s',
    (id) => {
      expect(requestIdFrom(id)).toBe(id);
    },
  );

  it.each([
    ['absent', undefined],
    ['empty', ''],
    ['too long', 'x'.repeat(129)],
    ['with spaces', 'a b'],
    ['with a newline (log forging)', 'a\n{"level":"info"}'],
    ['with quotes', '"abc"'],
    ['with a control character', 'a\u0000b'],
    ['non-ASCII', 'ïd'],
  ])('generates a UUID when the header is %s', (_, header) => {
    expect(requestIdFrom(header)).toMatch(UUID);
  });

  it('does not trust a repeated header', () => {
    expect(requestIdFrom(['a', 'b'])).toMatch(UUID);
  });

  it('generates a fresh id every time', () => {
    expect(requestIdFrom(undefined)).not.toBe(requestIdFrom(undefined));
  });
});
