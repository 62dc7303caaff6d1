import { Inject, Injectable, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheckService, type HealthCheckResult, HealthIndicatorService } from '@nestjs/terminus';
import { DomainError, type Logger } from '@norm/core';
import { NORM_LOGGER } from '@norm/platform';
import { Redis } from 'ioredis';
import { DataSource } from 'typeorm';

/**
 * Each dependency gets this long to answer. A probe must answer well within the prober's own
 * timeout (Kubernetes defaults to 1 s per probe), and a dependency that takes longer than a
 * second to run `SELECT 1` is not serving requests either.
 */
export const PROBE_TIMEOUT_MS = 1_000;

export interface Readiness {
  status: 'ok';
  details: Record<string, { status: string; message?: unknown }>;
}

class ProbeTimeout extends Error {}

async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProbeTimeout(`no answer in ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Readiness: can this process serve requests right now? Liveness deliberately checks nothing
 * (a restart does not fix Postgres), while readiness takes the instance out of rotation until
 * Postgres and Redis answer again.
 */
@Injectable()
export class ReadinessService {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicator: HealthIndicatorService,
    private readonly dataSource: DataSource,
    private readonly redis: Redis,
    @Inject(NORM_LOGGER) private readonly log: Logger,
  ) {}

  /** The per-dependency result when all are up; DependencyUnavailable (503) listing each otherwise. */
  async check(): Promise<Readiness> {
    try {
      const result = await this.health.check([
        () => this.probe('postgres', () => this.dataSource.query('SELECT 1')),
        () => this.probe('redis', () => this.redis.ping()),
      ]);
      return { status: 'ok', details: { ...result.details } };
    } catch (error) {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      const result = error.getResponse() as HealthCheckResult;
      throw new DomainError('DependencyUnavailable', 'not ready', { ...result.details });
    }
  }

  private async probe<const Key extends string>(key: Key, run: () => Promise<unknown>) {
    const session = this.indicator.check(key);
    try {
      await withTimeout(run(), PROBE_TIMEOUT_MS);
      return session.up();
    } catch (error) {
      this.log.warn('readiness probe failed', { dependency: key, error });
      // The body is public to whoever can reach /readyz: say what failed, not where it lives.
      return session.down({ message: error instanceof ProbeTimeout ? error.message : 'unreachable' });
    }
  }
}
