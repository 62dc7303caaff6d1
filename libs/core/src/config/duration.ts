const UNITS_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * Parses durations written like `180s`, `500ms`, `5m`, `1h30m`. A bare number is refused:
 * `180` could mean seconds or milliseconds, and guessing wrong on a reaper timeout is costly.
 */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (!/^(\d+(ms|s|m|h|d))+$/.test(trimmed)) {
    throw new Error(`"${text}" is not a duration; write it like 500ms, 180s, 5m, 1h or 1h30m`);
  }
  let total = 0;
  for (const match of trimmed.matchAll(/(\d+)(ms|s|m|h|d)/g)) {
    total += Number(match[1]) * UNITS_MS[match[2] as keyof typeof UNITS_MS];
  }
  return total;
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}
