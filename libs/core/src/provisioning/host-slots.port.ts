/**
 * Caps on concurrent create/destroy work: per host (the host's `limits.provisionConcurrency`,
 * else the fleet default) and overall. `run` waits for a slot on the host and one overall,
 * runs `work`, and frees both whatever happens.
 */
export interface HostSlots {
  run<T>(hostId: string, perHost: number | undefined, work: () => Promise<T>): Promise<T>;
}
