export interface BackoffPolicy {
  /** Delay before the second attempt; the first attempt after a healthy connection drops is immediate. */
  baseMs: number;
  /** Upper bound, so a host that comes back is noticed within this long. */
  maxMs: number;
}

/**
 * Exponential backoff with "equal jitter": half the delay is fixed, half random. The fixed
 * half keeps a dead host from being hammered; the random half spreads the reconnects of
 * many pooled hosts (or many workers) that lost their connections at the same moment.
 * `failures` counts consecutive failed attempts (>= 1).
 */
export function backoffDelay(
  failures: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, Math.min(failures - 1, 30));
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}
