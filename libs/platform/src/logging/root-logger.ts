import { hostname } from 'node:os';
import { pino, type DestinationStream, type Logger as Pino } from 'pino';
import { REDACTED, redactPaths } from './redaction';

export type PlatformApp = 'api' | 'worker';

export interface RootLoggerOptions {
  app: PlatformApp;
  level: string;
  /** Where JSON lines go; stdout (file descriptor 1, written synchronously) when absent. */
  destination?: DestinationStream;
}

/**
 * The one pino instance of a process. Every line is JSON with the app name, an ISO time and
 * a textual level (journald and `jq` users read `"level":"warn"` without a lookup table), and
 * passes the same redaction, so no code path can log a secret by forgetting a step.
 */
export function createRootLogger({ app, level, destination }: RootLoggerOptions): Pino {
  return pino(
    {
      level,
      base: { app, pid: process.pid, hostname: hostname() },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: redactPaths(), censor: REDACTED },
      // `error` is the conventional key in our structured calls (`log.warn('msg', { error })`);
      // without a serializer an Error would print as `{}`.
      serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
    },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
