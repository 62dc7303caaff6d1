import { hostname } from 'node:os';
import { pino, type DestinationStream, type Logger as Pino } from 'pino';
import { redactSecrets } from './redaction';

export type PlatformApp = 'api' | 'worker';

export interface RootLoggerOptions {
  app: PlatformApp;
  level: string;
  /**
   * Where JSON lines go. Default: stdout, written asynchronously in batches (see
   * createLogDestination), which keeps logging off the request path's critical cost
   * (bench/http-floor); pino flushes synchronously on exit and PlatformLifecycle on shutdown,
   * so only a SIGKILL can lose the last 100 ms of lines.
   */
  destination?: DestinationStream;
}

/**
 * Lines are written in batches of about 64 KiB (some 300 request lines), and at least every
 * 100 ms, so a quiet process still shows its lines at once to a reader. One write per line
 * was 9 % of the API's CPU in bench/http-floor's profile (a write syscall is not cheap); in
 * 8 KiB batches it was still 4 % (each asynchronous write wakes a libuv pool thread), in
 * 64 KiB batches it is under 1 %. What a batch holds is written on exit and on shutdown
 * (PlatformLifecycle), so only a SIGKILL can lose it: at most 100 ms of lines.
 */
const LOG_BATCH_BYTES = 65536;
const LOG_FLUSH_MS = 100;

/**
 * The asynchronous destination every process logs through: sonic-boom, fed one Buffer per
 * batch.
 *
 * In its default (string) mode sonic-boom appends each line to the string it is about to
 * write and measures that whole string's byte length again on every line, so while one write
 * is in flight each further line costs more than the last (it showed as a top entry in
 * bench/http-floor's profile). In buffer mode it keeps lengths, but encoding every line into
 * a Buffer of its own and queueing it was still 3 % of the API's CPU there. So lines wait
 * here as strings, and each batch is joined and encoded once: at ~64 KiB, on sonic-boom's
 * periodic flush (every 100 ms), and on every flush, flushSync and end, so nothing pino or
 * PlatformLifecycle flushes is left behind. `dest` is a file descriptor or a path
 * (benchmarks use `/dev/null`, so they pay the write syscalls the product pays).
 */
export function createLogDestination(dest: number | string = 1): DestinationStream {
  const boom = pino.destination({
    dest,
    sync: false,
    contentMode: 'buffer',
    minLength: LOG_BATCH_BYTES,
    // sonic-boom writes at most maxWrite per call and wants it above minLength.
    maxWrite: 2 * LOG_BATCH_BYTES,
    periodicFlush: LOG_FLUSH_MS,
  });
  const writeBuffer = boom.write.bind(boom) as unknown as (chunk: Buffer) => boolean;
  const pending: string[] = [];
  // UTF-16 units, not bytes: only a threshold, and a line's bytes are at least its units.
  let pendingLength = 0;
  const drain = (): void => {
    if (pending.length === 0) return;
    const batch = Buffer.from(pending.join(''));
    pending.length = 0;
    pendingLength = 0;
    writeBuffer(batch);
  };
  boom.write = (line: string): boolean => {
    pending.push(line);
    pendingLength += line.length;
    if (pendingLength >= LOG_BATCH_BYTES) drain();
    return true;
  };
  const flush = boom.flush.bind(boom);
  boom.flush = (cb?: (err?: Error) => unknown): void => {
    drain();
    flush(cb);
  };
  const flushSync = boom.flushSync.bind(boom);
  boom.flushSync = (): void => {
    drain();
    flushSync();
  };
  const end = boom.end.bind(boom);
  boom.end = (): void => {
    drain();
    end();
  };
  return boom;
}

let lastMs = Number.NaN;
let lastTime = '';

/**
 * pino's `isoTime`, formatted once per millisecond: a busy API writes many lines within one
 * millisecond, and `toISOString` was a measurable share of each line's cost.
 */
export function isoTimeOncePerMs(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

/** pino's error serializer, with secrets in an error's own fields (e.g. DomainError details) redacted. */
function serializeError(error: unknown): unknown {
  // The serializer's result has a prototype of its own; spread it into a plain object to walk it.
  return redactSecrets(error instanceof Error ? { ...pino.stdSerializers.err(error) } : error);
}

/**
 * The one pino instance of a process. Every line is JSON with the app name, an ISO time and
 * a textual level (journald and `jq` users read `"level":"warn"` without a lookup table).
 * Every line's data, every child's bindings and every serialized error pass the same
 * redaction, so no code path can log a secret by forgetting a step.
 */
export function createRootLogger({ app, level, destination }: RootLoggerOptions): Pino {
  const root = pino(
    {
      level,
      base: { app, pid: process.pid, hostname: hostname() },
      timestamp: isoTimeOncePerMs,
      formatters: {
        level: (label) => ({ level: label }),
        log: (data) => redactSecrets(data),
      },
      // `error` is the conventional key in our structured calls (`log.warn('msg', { error })`);
      // without a serializer an Error would print as `{}`.
      serializers: { err: serializeError, error: serializeError },
    },
    destination ?? createLogDestination(),
  );
  // pino applies `formatters.bindings` to the root's base only, never to a child's bindings,
  // so redaction is put in front of `child` itself; children inherit it through the prototype.
  const pinoProto = Object.getPrototypeOf(root) as Pino;
  root.child = function redactedChild(this: Pino, bindings, options) {
    return pinoProto.child.call(this, redactSecrets(bindings), options);
  } as Pino['child'];
  return root;
}
