import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { connect as netConnect } from 'node:net';
import { posix } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { Client, type ClientChannel, type SFTPWrapper } from 'ssh2';
import { type DomainError, type HostEndpoint } from '@norm/core';
import { classifyRemoteFailure } from '../errors/xen.errors';
import { quoteArgv } from '../shell/shell-quote';
import { backoffDelay } from './backoff';
import { ChannelLimiter } from './channel-limiter';
import { fingerprintMatches, hostKeyFingerprint } from './host-key-fingerprint';
import { type SshTransportOptions } from './ssh-options';
import {
  type CommandPhase,
  commandTimeout,
  hostKeyMismatch,
  hostUnreachable,
  outputTooLarge,
  unsafeRemotePath,
} from './transport-errors';

/** What a command left behind. Only exit code 0 is returned; anything else is thrown, typed. */
export interface RemoteResult {
  stdout: string;
  stderr: string;
  exitCode: number;
  durationMs: number;
}

export interface ExecOptions {
  /** Deadline for the whole call: waiting for a connection and a channel slot included. */
  timeoutMs?: number;
}

export interface UploadOptions {
  /** Defaults to 0o600: rendered configs carry per-instance tokens that only the owner may read. */
  mode?: number;
  timeoutMs?: number;
}

/** The seam between the Xen operations and the wire, so the operations can be tested without SSH. */
export interface RemoteShell {
  readonly hostName: string;
  exec(argv: readonly string[], options?: ExecOptions): Promise<RemoteResult>;
  /** Atomically replaces `path` (temp file + rename), created with `mode`. */
  upload(path: string, content: string | Buffer, options?: UploadOptions): Promise<void>;
  /** Deletes `path`; resolves false when it was already absent. */
  remove(path: string, options?: { timeoutMs?: number }): Promise<boolean>;
}

export interface ConnectionStats {
  state: State['kind'];
  channelsInUse: number;
  queued: number;
  consecutiveFailures: number;
}

/** One authenticated SSH connection and what rides on it. */
interface Live {
  client: Client;
  dropped: boolean;
  /** Fails every operation on this connection when it drops. */
  inflight: Set<(err: DomainError) => void>;
  sftp?: Promise<SFTPWrapper>;
  sftpBusy: number;
  sftpIdleTimer?: NodeJS.Timeout;
  /** Bytes received from the host so far (see DroppedBeforeExec). */
  received(): number;
}

type State =
  | { kind: 'idle' }
  | { kind: 'connecting'; promise: Promise<Live> }
  | { kind: 'ready'; live: Live }
  | { kind: 'backoff'; retryAt: number; failure: (retryInMs: number) => DomainError }
  | { kind: 'closed' };

interface ChannelOutcome {
  stdout: string;
  stderr: string;
  exitCode: number | null;
  signal?: string;
}

/**
 * An SFTP session is closed after this much idleness: it holds one of the connection's
 * channel slots, and config uploads come in bursts (provisioning), not steadily.
 */
const SFTP_IDLE_MS = 30_000;
const SFTP_NO_SUCH_FILE = 2;
const SAFE_REMOTE_PATH = /^\/[A-Za-z0-9._/-]+$/;
/** Refused channel opens are retried 10, 20, 40, 80 ms apart before the refusal is reported. */
const CHANNEL_OPEN_ATTEMPTS = 5;
const CHANNEL_RETRY_BASE_MS = 10;

/**
 * The pooled connection to one Xen host. Commands are multiplexed as channels over a
 * single ssh2 client, at most `maxChannels` at once with a FIFO queue behind them. The
 * connection opens lazily, reconnects lazily after a drop, and backs off (with jitter)
 * between failed attempts: while backing off, callers get the last failure at once
 * instead of piling onto a dead host.
 *
 * Every operation runs under one deadline that spans connecting, queueing and running,
 * enforced by this side alone: a host that accepts TCP and then says nothing still
 * releases its caller at the deadline.
 */
export class SshHostConnection implements RemoteShell {
  private state: State = { kind: 'idle' };
  private consecutiveFailures = 0;
  private readonly limiter: ChannelLimiter;
  private readonly closing = new AbortController();
  private busy = 0;
  private idleTimer?: NodeJS.Timeout;
  /** Cuts the connection attempt in progress short (shutdown must not wait out a connect timeout). */
  private abortAttempt?: (err: DomainError) => void;

  constructor(
    readonly endpoint: Readonly<HostEndpoint>,
    private readonly options: SshTransportOptions,
  ) {
    this.limiter = new ChannelLimiter(options.maxChannels);
    // Every running operation listens for shutdown; the default cap of 10 would warn.
    setMaxListeners(0, this.closing.signal);
  }

  get hostName(): string {
    return this.endpoint.name;
  }

  stats(): ConnectionStats {
    return {
      state: this.state.kind,
      channelsInUse: this.limiter.inUse,
      queued: this.limiter.queued,
      consecutiveFailures: this.consecutiveFailures,
    };
  }

  async exec(argv: readonly string[], options: ExecOptions = {}): Promise<RemoteResult> {
    const timeoutMs = options.timeoutMs ?? this.options.commandTimeoutMs;
    // quoteArgv rejects unsafe values before anything is queued, let alone sent.
    const command = quoteArgv(this.endpoint.sudo ? ['sudo', '-n', ...argv] : [...argv]);
    const started = performance.now();
    const outcome = await this.withDeadline(argv, timeoutMs, async (signal, setPhase) => {
      for (let attempt = 1; ; attempt++) {
        setPhase('queue');
        const release = await this.limiter.acquire(signal);
        let handedOver = false;
        try {
          setPhase('connect');
          const live = await this.live(signal);
          setPhase('exec');
          handedOver = true;
          return await this.runChannel(live, argv, command, signal, release);
        } catch (err) {
          if (err instanceof ChannelRefused) {
            // sshd counts a session against MaxSessions until it has reaped it, a moment
            // after it sent the close we freed our slot on; a refused channel ran nothing,
            // so wait a little and ask again, within the same deadline.
            if (attempt >= CHANNEL_OPEN_ATTEMPTS) throw err.error;
            await delay(CHANNEL_RETRY_BASE_MS * 2 ** (attempt - 1), undefined, { signal }).catch(
              () => undefined,
            );
            continue;
          }
          // A pooled connection can die (host dropped it, NAT forgot it) just before we
          // hand it a command; we learn of it only when the close arrives. The command
          // never reached the host, so one retry on a new connection, inside the same
          // deadline, is safe even for commands that change things.
          if (!(err instanceof DroppedBeforeExec)) throw err;
          if (attempt > 1) throw err.error;
          this.options.logger.debug('ssh connection dropped before the command started; retrying', {
            host: this.hostName,
            command: argv[0],
          });
        } finally {
          if (!handedOver) release();
        }
      }
    });
    const durationMs = Math.round((performance.now() - started) * 10) / 10;
    this.options.logger.debug('ssh command finished', {
      host: this.hostName,
      command: argv[0],
      exitCode: outcome.exitCode,
      durationMs,
    });
    if (outcome.exitCode !== 0) {
      throw classifyRemoteFailure({
        host: this.hostName,
        argv: [...argv],
        exitCode: outcome.exitCode,
        signal: outcome.signal,
        stdout: outcome.stdout,
        stderr: outcome.stderr,
        durationMs,
      });
    }
    return { stdout: outcome.stdout, stderr: outcome.stderr, exitCode: 0, durationMs };
  }

  async upload(path: string, content: string | Buffer, options: UploadOptions = {}): Promise<void> {
    assertSafeRemotePath(this.hostName, path);
    const mode = options.mode ?? 0o600;
    const data = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    const label = ['sftp-upload', path];
    await this.withDeadline(
      label,
      options.timeoutMs ?? this.options.commandTimeoutMs,
      async (signal, setPhase) => {
        setPhase('connect');
        const live = await this.live(signal);
        setPhase('sftp');
        const sftp = await this.sftp(live, signal);
        const { dir, base } = posix.parse(path);
        // A fresh random name opened with O_EXCL: never written through a planted file or
        // symlink, and readers of `path` see the old or the new file, never a partial one.
        const temp = posix.join(dir, `.${base}.${randomBytes(6).toString('hex')}.tmp`);
        const op = this.sftpOp(live, sftp, signal);
        try {
          const handle = await op<Buffer>((cb) => sftp.open(temp, 'wx', { mode }, cb));
          try {
            // open()'s mode is masked by the server's umask; fchmod makes it exact.
            await op((cb) => sftp.fchmod(handle, mode, cb));
            await op((cb) => sftp.write(handle, data, 0, data.length, 0, cb));
          } finally {
            await op((cb) => sftp.close(handle, cb));
          }
          await this.sftpReplace(sftp, op, temp, path);
        } catch (err) {
          if (!live.dropped) sftp.unlink(temp, () => undefined);
          throw err;
        }
      },
    );
  }

  async remove(path: string, options: { timeoutMs?: number } = {}): Promise<boolean> {
    assertSafeRemotePath(this.hostName, path);
    const label = ['sftp-remove', path];
    return this.withDeadline(
      label,
      options.timeoutMs ?? this.options.commandTimeoutMs,
      async (signal, setPhase) => {
        setPhase('connect');
        const live = await this.live(signal);
        setPhase('sftp');
        const sftp = await this.sftp(live, signal);
        try {
          await this.sftpOp(live, sftp, signal)((cb) => sftp.unlink(path, cb));
          return true;
        } catch (err) {
          if (sftpCode(err) === SFTP_NO_SUCH_FILE) return false;
          throw err;
        }
      },
    );
  }

  /** Ends the connection and fails queued and running operations; idempotent. */
  async close(): Promise<void> {
    if (this.state.kind === 'closed') return;
    const previous = this.state;
    this.state = { kind: 'closed' };
    clearTimeout(this.idleTimer);
    const err = hostUnreachable(this.hostName, 'transport closed');
    this.closing.abort(err);
    this.limiter.rejectAll(err);
    if (previous.kind === 'ready') await endClient(previous.live.client);
    else if (previous.kind === 'connecting') {
      this.abortAttempt?.(err);
      await previous.promise.then(
        (live) => endClient(live.client),
        () => undefined,
      );
    }
  }

  /**
   * Runs `fn` under a deadline and the transport's shutdown signal. The race guarantees
   * the caller is released at the deadline even if some step failed to honour the signal.
   */
  private async withDeadline<T>(
    argv: readonly string[],
    timeoutMs: number,
    fn: (signal: AbortSignal, setPhase: (phase: CommandPhase) => void) => Promise<T>,
  ): Promise<T> {
    if (this.state.kind === 'closed') throw hostUnreachable(this.hostName, 'transport closed');
    const controller = new AbortController();
    let phase: CommandPhase = 'queue';
    const timer = setTimeout(
      () => controller.abort(commandTimeout(this.hostName, argv, timeoutMs, phase)),
      timeoutMs,
    );
    const onClose = (): void => controller.abort(this.closing.signal.reason);
    this.closing.signal.addEventListener('abort', onClose, { once: true });
    this.busy += 1;
    clearTimeout(this.idleTimer);
    try {
      const work = fn(controller.signal, (next) => {
        phase = next;
      });
      return await raceAbort(work, controller.signal);
    } finally {
      clearTimeout(timer);
      this.closing.signal.removeEventListener('abort', onClose);
      this.busy -= 1;
      if (this.busy === 0) this.armIdleTimer();
    }
  }

  private live(signal: AbortSignal): Promise<Live> {
    const state = this.state;
    switch (state.kind) {
      case 'closed':
        return Promise.reject(hostUnreachable(this.hostName, 'transport closed'));
      case 'ready':
        return Promise.resolve(state.live);
      case 'connecting':
        return raceAbort(state.promise, signal);
      case 'backoff': {
        const wait = state.retryAt - performance.now();
        if (wait > 0) return Promise.reject(state.failure(Math.ceil(wait)));
        return raceAbort(this.startConnect(), signal);
      }
      case 'idle':
        return raceAbort(this.startConnect(), signal);
    }
  }

  private startConnect(): Promise<Live> {
    const promise = this.connectOnce();
    this.state = { kind: 'connecting', promise };
    promise.then(
      (live) => {
        if (this.state.kind === 'closed') return;
        this.consecutiveFailures = 0;
        this.state = { kind: 'ready', live };
        this.options.logger.info('ssh connected', { host: this.hostName });
      },
      (err: DomainError) => {
        if (this.state.kind === 'closed') return;
        this.consecutiveFailures += 1;
        const delay = backoffDelay(this.consecutiveFailures, this.options.backoff, this.options.random);
        this.state = {
          kind: 'backoff',
          retryAt: performance.now() + delay,
          failure: (retryInMs) => this.withRetryHint(err, retryInMs),
        };
        this.options.logger.warn('ssh connect failed', {
          host: this.hostName,
          code: err.code,
          details: err.details,
          failures: this.consecutiveFailures,
          retryInMs: delay,
        });
      },
    );
    return promise;
  }

  private connectOnce(): Promise<Live> {
    const { address, port, user, hostKeyFingerprint: pinned } = this.endpoint;
    const timeoutMs = this.options.connectTimeoutMs;
    return new Promise<Live>((resolve, reject) => {
      // Our own socket, because ssh2 never disables Nagle: without TCP_NODELAY every
      // small channel request waits ~40 ms for the peer's delayed ACK.
      const sock = netConnect({ host: address, port });
      sock.setNoDelay(true);
      let received = 0;
      sock.on('data', (chunk: Buffer) => {
        received += chunk.length;
      });
      const client = new Client();
      let mismatch: string | undefined;
      let settled = false;
      const fail = (err: DomainError): void => {
        if (settled) return;
        settled = true;
        this.abortAttempt = undefined;
        clearTimeout(guard);
        client.destroy();
        sock.destroy();
        reject(err);
      };
      // ssh2's readyTimeout covers TCP connect, handshake and auth; this guard is the
      // backstop should any phase slip past it (a caller must never wait forever).
      const guard = setTimeout(
        () => fail(hostUnreachable(this.hostName, 'connect timeout', { timeoutMs })),
        timeoutMs + 100,
      );
      this.abortAttempt = fail;
      client.on('ready', () => {
        if (settled) return;
        settled = true;
        this.abortAttempt = undefined;
        clearTimeout(guard);
        const live: Live = {
          client,
          dropped: false,
          inflight: new Set(),
          sftpBusy: 0,
          received: () => received,
        };
        client.on('close', () => this.onDrop(live));
        resolve(live);
      });
      client.on('error', (err: Error & { level?: string }) => {
        if (!settled) {
          fail(
            mismatch !== undefined
              ? hostKeyMismatch(this.hostName, pinned, mismatch)
              : hostUnreachable(this.hostName, connectFailureReason(err), { level: err.level }, err),
          );
          return;
        }
        // After 'ready' an error (keepalive timeout, socket reset) is followed by 'close'.
        this.options.logger.warn('ssh connection error', { host: this.hostName, error: err.message });
      });
      client.on('close', () => {
        if (mismatch !== undefined) fail(hostKeyMismatch(this.hostName, pinned, mismatch));
        else fail(hostUnreachable(this.hostName, 'connection closed during handshake'));
      });
      try {
        client.connect({
          sock,
          username: user,
          privateKey: this.options.privateKey,
          readyTimeout: timeoutMs,
          keepaliveInterval: this.options.keepaliveIntervalMs,
          keepaliveCountMax: this.options.keepaliveCountMax,
          // Runs on the server's key during key exchange, before NEWKEYS and therefore
          // before any authentication or command: a wrong key never sees a byte of ours.
          hostVerifier: (key: Buffer): boolean => {
            const actual = hostKeyFingerprint(key);
            if (fingerprintMatches(pinned, actual)) return true;
            mismatch = actual;
            return false;
          },
        });
      } catch (err) {
        fail(hostUnreachable(this.hostName, 'ssh client setup failed', {}, err));
      }
    });
  }

  private onDrop(live: Live): void {
    if (live.dropped) return;
    live.dropped = true;
    clearTimeout(live.sftpIdleTimer);
    const err = hostUnreachable(this.hostName, 'connection lost');
    for (const fail of [...live.inflight]) fail(err);
    live.inflight.clear();
    if (this.state.kind === 'ready' && this.state.live === live) {
      // The connection had worked, so the next command reconnects at once; backoff only
      // starts counting if that attempt fails too.
      this.state = { kind: 'idle' };
      this.options.logger.warn('ssh connection lost', { host: this.hostName });
    }
  }

  /**
   * Opens a channel, runs one command, collects its output. The channel slot is given
   * back only once the channel is really closed (or the connection is gone), because
   * sshd counts it against MaxSessions until then.
   */
  private runChannel(
    live: Live,
    argv: readonly string[],
    command: string,
    signal: AbortSignal,
    release: () => void,
  ): Promise<ChannelOutcome> {
    return new Promise<ChannelOutcome>((resolve, reject) => {
      let stream: ClientChannel | undefined;
      let settled = false;
      let finished = false;
      let graceTimer: NodeJS.Timeout | undefined;
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let outputBytes = 0;
      let exitCode: number | null = null;
      let exitSignal: string | undefined;

      const settle = (action: () => void): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        action();
      };
      const finish = (): void => {
        if (finished) return;
        finished = true;
        clearTimeout(graceTimer);
        live.inflight.delete(onDrop);
        release();
      };
      // ssh2 sends the exec request only after the host confirmed the channel open, so if
      // not one byte came back since we asked, the host cannot have started the command.
      const receivedBefore = live.received();
      const onDrop = (err: DomainError): void => {
        const unsent = stream === undefined && live.received() === receivedBefore;
        settle(() => reject(unsent ? new DroppedBeforeExec(err) : err));
        finish();
      };
      const abandon = (): void => {
        if (!stream || finished) return;
        try {
          stream.signal('KILL');
        } catch {
          // Not every server supports signals; closing the channel below still applies.
        }
        stream.close();
        graceTimer = setTimeout(() => {
          this.options.logger.warn('ssh channel did not close after abandon; dropping the connection', {
            host: this.hostName,
            command: argv[0],
          });
          live.client.destroy();
        }, this.options.closeGraceMs);
      };
      const onAbort = (): void => {
        settle(() => reject(signal.reason as Error));
        abandon();
      };
      const collect = (into: Buffer[]) => (chunk: Buffer) => {
        outputBytes += chunk.length;
        if (outputBytes > this.options.maxOutputBytes) {
          settle(() => reject(outputTooLarge(this.hostName, argv, this.options.maxOutputBytes)));
          abandon();
          return;
        }
        into.push(chunk);
      };

      if (signal.aborted) {
        settled = true;
        reject(signal.reason as Error);
        finish();
        return;
      }
      if (live.dropped) {
        onDrop(hostUnreachable(this.hostName, 'connection lost'));
        return;
      }
      live.inflight.add(onDrop);
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        live.client.exec(command, (err, channel) => {
          if (err) {
            const failure = hostUnreachable(
              this.hostName,
              live.dropped ? 'connection lost' : 'channel open refused',
              { error: err.message },
              err,
            );
            // A refusal on a live connection (MaxSessions) is an answer, not a drop.
            if (live.dropped) onDrop(failure);
            else {
              settle(() => reject(new ChannelRefused(failure)));
              finish();
            }
            return;
          }
          stream = channel;
          if (finished) {
            channel.close();
            return;
          }
          channel.on('data', collect(stdout));
          channel.stderr.on('data', collect(stderr));
          channel.on('exit', (code: number | null, sig?: string) => {
            if (typeof code === 'number') exitCode = code;
            else exitSignal = sig;
          });
          channel.on('close', () => {
            finish();
            settle(() =>
              resolve({
                stdout: Buffer.concat(stdout).toString('utf8'),
                stderr: Buffer.concat(stderr).toString('utf8'),
                exitCode,
                signal: exitSignal,
              }),
            );
          });
          if (settled) abandon();
        });
      } catch (err) {
        // ssh2 throws when the socket is no longer writable: the connection is dead even if
        // its close event has not arrived yet, so retire it for everything riding on it.
        this.options.logger.debug('ssh channel open failed on a dead socket', {
          host: this.hostName,
          error: asError(err).message,
        });
        live.client.destroy();
        this.onDrop(live);
      }
    });
  }

  /**
   * One SFTP session per connection, opened on first use. It occupies a channel slot
   * while open, so it counts against the same MaxSessions budget as commands.
   */
  private sftp(live: Live, signal: AbortSignal): Promise<SFTPWrapper> {
    if (!live.sftp) {
      const opening = this.openSftp(live, signal);
      live.sftp = opening;
      opening.then(
        (session) =>
          session.once('close', () => {
            if (live.sftp === opening) live.sftp = undefined;
          }),
        () => {
          if (live.sftp === opening) live.sftp = undefined;
        },
      );
    }
    clearTimeout(live.sftpIdleTimer);
    return raceAbort(live.sftp, signal);
  }

  private async openSftp(live: Live, signal: AbortSignal): Promise<SFTPWrapper> {
    const release = await this.limiter.acquire(signal);
    return new Promise<SFTPWrapper>((resolve, reject) => {
      if (live.dropped) {
        release();
        reject(hostUnreachable(this.hostName, 'connection lost'));
        return;
      }
      const onDrop = (err: DomainError): void => {
        release();
        reject(err);
      };
      live.inflight.add(onDrop);
      live.client.sftp((err, sftp) => {
        live.inflight.delete(onDrop);
        if (err) {
          release();
          reject(hostUnreachable(this.hostName, 'sftp subsystem refused', { error: err.message }, err));
          return;
        }
        const onSessionDrop = (): void => release();
        live.inflight.add(onSessionDrop);
        sftp.on('close', () => {
          live.inflight.delete(onSessionDrop);
          release();
        });
        resolve(sftp);
      });
    });
  }

  /** Wraps one SFTP request in the operation's deadline; a timed-out session is discarded. */
  private sftpOp(live: Live, sftp: SFTPWrapper, signal: AbortSignal) {
    return <T = void>(start: (cb: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        let done = false;
        const onDrop = (err: DomainError): void => finish(() => reject(asError(err)));
        const onAbort = (): void => {
          finish(() => reject(signal.reason as Error));
          // A request that never answered leaves the session in an unknown state: drop it,
          // and the connection too if even the close goes unanswered.
          if (live.sftp) live.sftp = undefined;
          sftp.end();
          const grace = setTimeout(() => live.client.destroy(), this.options.closeGraceMs);
          sftp.once('close', () => clearTimeout(grace));
        };
        const finish = (action: () => void): void => {
          if (done) return;
          done = true;
          live.inflight.delete(onDrop);
          signal.removeEventListener('abort', onAbort);
          live.sftpBusy -= 1;
          if (live.sftpBusy === 0) this.armSftpIdle(live, sftp);
          action();
        };
        live.sftpBusy += 1;
        clearTimeout(live.sftpIdleTimer);
        if (signal.aborted) return onAbort();
        live.inflight.add(onDrop);
        signal.addEventListener('abort', onAbort, { once: true });
        try {
          start((err, value) => finish(() => (err ? reject(err) : resolve(value as T))));
        } catch (err) {
          finish(() => reject(asError(err)));
        }
      });
  }

  private async sftpReplace(
    sftp: SFTPWrapper,
    op: ReturnType<SshHostConnection['sftpOp']>,
    from: string,
    to: string,
  ): Promise<void> {
    try {
      // posix-rename replaces atomically; plain SFTP rename refuses an existing target.
      await op((cb) => sftp.ext_openssh_rename(from, to, cb));
      return;
    } catch (err) {
      if (!(err instanceof Error) || !/does not support/.test(err.message)) throw err;
    }
    // Servers without the extension: replace in two steps (a reader may briefly find no file).
    try {
      await op((cb) => sftp.rename(from, to, cb));
    } catch {
      await op((cb) => sftp.unlink(to, cb)).catch((err: unknown) => {
        if (sftpCode(err) !== SFTP_NO_SUCH_FILE) throw err;
      });
      await op((cb) => sftp.rename(from, to, cb));
    }
  }

  private withRetryHint(err: DomainError, retryInMs: number): DomainError {
    // HostKeyMismatch keeps its own shape: it is not transient and needs an operator.
    if (err.code === 'HostKeyMismatch') return err;
    const reason = typeof err.details.reason === 'string' ? err.details.reason : 'unreachable';
    return hostUnreachable(this.hostName, reason, { retryInMs, backingOff: true }, err);
  }

  private armSftpIdle(live: Live, sftp: SFTPWrapper): void {
    clearTimeout(live.sftpIdleTimer);
    live.sftpIdleTimer = setTimeout(() => {
      if (live.sftp) live.sftp = undefined;
      sftp.end();
    }, SFTP_IDLE_MS);
    live.sftpIdleTimer.unref();
  }

  private armIdleTimer(): void {
    clearTimeout(this.idleTimer);
    if (this.state.kind !== 'ready') return;
    const live = this.state.live;
    this.idleTimer = setTimeout(() => {
      if (this.busy > 0 || this.state.kind !== 'ready' || this.state.live !== live) return;
      this.options.logger.debug('ssh connection idle; closing', { host: this.hostName });
      this.state = { kind: 'idle' };
      live.client.end();
    }, this.options.idleTimeoutMs);
    this.idleTimer.unref();
  }
}

/** The host refused to open a channel (sshd's MaxSessions): nothing ran. Internal to exec(). */
class ChannelRefused extends Error {
  constructor(readonly error: DomainError) {
    super(error.message);
  }
}

/**
 * The connection was gone before the host could have received the command (nothing came
 * back after the channel was requested). Internal to exec(): it retries once on a new
 * connection, and otherwise throws the HostUnreachable inside.
 */
class DroppedBeforeExec extends Error {
  constructor(readonly error: DomainError) {
    super(error.message);
  }
}

function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      work.catch(() => undefined);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(asError(err));
      },
    );
  });
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function endClient(client: Client): Promise<void> {
  return new Promise<void>((resolve) => {
    // A polite end first; a peer that does not answer the disconnect is cut after 1 s.
    const timer = setTimeout(() => {
      client.destroy();
      resolve();
    }, 1_000);
    client.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    client.end();
  });
}

function connectFailureReason(err: Error & { code?: string; level?: string }): string {
  if (err.code) return err.code;
  if (err.level === 'client-timeout') return 'connect timeout';
  if (err.level === 'client-authentication') return 'authentication failed';
  return err.message;
}

function sftpCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

function assertSafeRemotePath(host: string, path: string): void {
  if (!SAFE_REMOTE_PATH.test(path) || path.split('/').includes('..')) throw unsafeRemotePath(host, path);
}
