import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from './duration';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['180s', 180_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['2d', 172_800_000],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['180', '', '1.5s', '-3s', '3 s', 's', '10x'])('refuses %j', (text) => {
    expect(() => parseDuration(text)).toThrow(/not a duration/);
  });

  it('formats back to the largest whole unit', () => {
    expect(formatDuration(180_000)).toBe('3m');
    expect(formatDuration(1_500)).toBe('1500ms');
    expect(formatDuration(45_000)).toBe('45s');
  });
});
