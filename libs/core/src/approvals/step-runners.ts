import { spawn } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Outbound HTTP for webhook steps, injectable so tests need no network. */
export interface WebhookPoster {
  post(
    url: string,
    body: string,
    headers: Readonly<Record<string, string>>,
    timeoutMs: number,
  ): Promise<{ status: number; body: string }>;
}

export interface CommandResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a site program for a command step, injectable so unit tests need no processes. */
export interface CommandRunner {
  run(command: string, args: readonly string[], stdin: string, timeoutMs: number): Promise<CommandResult>;
}

export const fetchWebhookPoster: WebhookPoster = {
  async post(url, body, headers, timeoutMs) {
    const res = await fetch(url, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', ...headers },
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: res.status, body: await res.text() };
  },
};

/** Output kept per stream: enough for a reason and a stack trace, not a runaway log. */
const MAX_OUTPUT = 16_384;

/**
 * Spawns without a shell (the argv is the policy's, never the request's) in its own process
 * group and kills the whole group on timeout with SIGKILL: a handler that ignores SIGTERM, or
 * a script whose child keeps the pipes open, must not hold a request.
 */
export const processCommandRunner: CommandRunner = {
  run(command, args, stdin, timeoutMs) {
    return new Promise((resolve) => {
      const child = spawn(command, [...args], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      let settled = false;
      const finish = (r: CommandResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ ...r, stdout: r.stdout.slice(0, MAX_OUTPUT), stderr: r.stderr.slice(0, MAX_OUTPUT) });
      };
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }, timeoutMs);
      child.stdout.on('data', (b: Buffer) => {
        if (stdout.length < MAX_OUTPUT) stdout += b.toString('utf8');
      });
      child.stderr.on('data', (b: Buffer) => {
        if (stderr.length < MAX_OUTPUT) stderr += b.toString('utf8');
      });
      child.on('error', (err) => finish({ exitCode: null, stdout, stderr: stderr + err.message, timedOut }));
      // After a timeout, the exit is enough: output still buffered in a killed pipe does not matter.
      child.on('exit', (code) => {
        if (timedOut) finish({ exitCode: code, stdout, stderr, timedOut });
      });
      child.on('close', (code) => finish({ exitCode: code, stdout, stderr, timedOut }));
      // A program that exits without reading STDIN must not crash us with EPIPE.
      child.stdin.on('error', () => undefined);
      child.stdin.end(stdin);
    });
  },
};

export function signPayload(secret: string, payload: string): string {
  return `sha256=${createHmac('sha256', secret).update(payload).digest('hex')}`;
}

/**
 * `t=<unix s>,v1=<hex>` with v1 = HMAC-SHA256(secret, `<t>.<body>`) (the Stripe scheme): what
 * Norm's outbound webhooks (deregistration, notifications) sign with, so a receiver checks
 * both the same way and can refuse a replay older than its window.
 */
export function signTimestamped(secret: string, body: string, t: number): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

export function verifySignature(secret: string, payload: string, signature: string): boolean {
  const want = Buffer.from(signPayload(secret, payload));
  const got = Buffer.from(signature);
  return want.length === got.length && timingSafeEqual(want, got);
}

/**
 * What a webhook callback signs: request id, step, decision and reason joined by newlines.
 * Signing these fields rather than the raw body keeps the check independent of how the JSON
 * was spaced, and binds the signature to the one request and step it decides.
 */
export function callbackPayload(
  requestId: string,
  step: string,
  decision: string,
  reason: string | null | undefined,
): string {
  return [requestId, step, decision, reason ?? ''].join('\n');
}
