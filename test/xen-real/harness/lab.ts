import { execFile } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Where test/xen-real/lab/*.sh keep the build and one boot's state (git-ignored). */
export const LAB_DIR = join(__dirname, '..', 'lab');
export const BUILD_DIR = process.env.XENLAB_BUILD ?? join(__dirname, '..', 'build');
export const RUN_DIR = join(BUILD_DIR, 'run');
export const SSH_PORT = Number(process.env.XENLAB_SSH_PORT ?? 10022);
export const NORM_KEY = join(BUILD_DIR, 'ssh', 'norm_ed25519');
const ROOT_KEY = join(BUILD_DIR, 'ssh', 'root_ed25519');
const LOG = join(RUN_DIR, 'xen-real.log');

/** Runs one of the lab's scripts, its output going to this process's (so CI's log shows it). */
export async function labScript(name: string, env: Record<string, string> = {}): Promise<void> {
  const child = execFile('bash', [join(LAB_DIR, name)], { env: { ...process.env, ...env } });
  child.stdout?.pipe(process.stdout);
  child.stderr?.pipe(process.stderr);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`test/xen-real/lab/${name} exited with ${code}`);
}

export interface Shell {
  stdout: string;
  stderr: string;
  code: number;
}

async function ssh(key: string, user: string, command: string, timeoutMs: number): Promise<Shell> {
  const args = [
    '-i',
    key,
    '-p',
    String(SSH_PORT),
    '-o',
    `UserKnownHostsFile=${join(BUILD_DIR, 'ssh', 'known_hosts')}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    // A fresh handshake costs ~1.5 s of emulated dom0 on an idle machine, far more on a busy one.
    'ConnectTimeout=60',
    '-o',
    'LogLevel=ERROR',
    `${user}@127.0.0.1`,
    command,
  ];
  try {
    const { stdout, stderr } = await run('ssh', args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number | string };
    return {
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? '',
      code: typeof e.code === 'number' ? e.code : 255,
    };
  }
}

/** A command as Norm's own user would run it (sudo -n for xl and LVM), logged with its output. */
export async function asNorm(command: string, timeoutMs = 300_000): Promise<Shell> {
  const r = await ssh(NORM_KEY, 'norm', command, timeoutMs);
  logCommand(`[norm] ${command}`, r);
  return r;
}

/** Root in dom0: only for looking behind Norm's back (guest consoles, a hand-made domain). */
export async function asRoot(command: string, timeoutMs = 300_000): Promise<Shell> {
  const r = await ssh(ROOT_KEY, 'root', command, timeoutMs);
  logCommand(`[root] ${command}`, r);
  return r;
}

/** The real `xl` output goes to the tier's log and stdout, so CI shows what the host said. */
export function logCommand(label: string, r: Shell): void {
  const lines = [`$ ${label}   (exit ${r.code})`];
  for (const l of r.stdout.trimEnd().split('\n')) if (l) lines.push(`  | ${l}`);
  for (const l of r.stderr.trimEnd().split('\n')) if (l) lines.push(`  ! ${l}`);
  note(lines.join('\n'));
}

export function note(text: string): void {
  mkdirSync(RUN_DIR, { recursive: true });
  appendFileSync(LOG, `${text}\n`);
  process.stdout.write(`${text}\n`);
}

export function step(title: string): void {
  note(`\n==== ${new Date().toISOString()} ${title}`);
}

/** dom0's ed25519 host key as `ssh-keygen -lf` prints it (SHA256:...), read from the build. */
export async function labFingerprint(): Promise<string> {
  const { stdout } = await run('ssh-keygen', ['-lf', join(BUILD_DIR, 'ssh', 'dom0_host_ed25519_key.pub')]);
  const fp = stdout.split(' ')[1];
  if (!fp?.startsWith('SHA256:')) throw new Error(`unexpected ssh-keygen output: ${stdout}`);
  return fp;
}

export function publicKey(): string {
  return readFileSync(`${NORM_KEY}.pub`, 'utf8').trim();
}

/** Keeps a process's output beside the tier's log (build/run/<name>.log) for a failed run's reader. */
export function saveOutput(
  name: string,
  lines: ReadonlyArray<Record<string, unknown>>,
  stderr: readonly string[],
): void {
  mkdirSync(RUN_DIR, { recursive: true });
  writeFileSync(
    join(RUN_DIR, `${name}.log`),
    lines.map((l) => JSON.stringify(l)).join('\n') + '\n' + stderr.join(''),
  );
}
