import { type CommandRunner } from '../approvals/step-runners';
import { type Deregistrar, type DeregistrationEvent } from './deregistrar.port';

export interface CommandDeregistrarOptions {
  name: string;
  /** Program and arguments, run directly (no shell); the event arrives as JSON on STDIN. */
  argv: readonly string[];
  timeoutMs: number;
}

/**
 * A site's own script. Exit 0 is removed, exit 3 is "this instance was not there" (already
 * absent); anything else, or a timeout, fails and is retried with backoff.
 */
export class CommandDeregistrar implements Deregistrar {
  static readonly EXIT_ABSENT = 3;
  readonly name: string;

  constructor(
    private readonly options: CommandDeregistrarOptions,
    private readonly runner: CommandRunner,
  ) {
    this.name = `command:${options.name}`;
  }

  private get program(): string {
    const p = this.options.argv[0];
    if (!p) throw new Error('command target without a program');
    return p;
  }

  async deregister(event: DeregistrationEvent): Promise<{ outcome: 'removed' | 'absent' }> {
    const r = await this.runner.run(
      this.program,
      this.options.argv.slice(1),
      JSON.stringify(event),
      this.options.timeoutMs,
    );
    if (r.timedOut) throw new Error(`command timed out after ${this.options.timeoutMs} ms`);
    if (r.exitCode === 0) return { outcome: 'removed' };
    if (r.exitCode === CommandDeregistrar.EXIT_ABSENT) return { outcome: 'absent' };
    throw new Error(`command exited ${String(r.exitCode)}: ${r.stderr.trim().slice(0, 500)}`);
  }

  async testConnection(): Promise<{ ok: boolean; detail: string }> {
    const r = await this.runner.run(
      this.program,
      [...this.options.argv.slice(1), '--test'],
      '',
      this.options.timeoutMs,
    );
    return { ok: r.exitCode === 0, detail: r.timedOut ? 'timed out' : `exit ${String(r.exitCode)}` };
  }

  describe(): Record<string, unknown> {
    return {
      kind: 'command',
      name: this.name,
      program: this.options.argv[0],
      timeoutMs: this.options.timeoutMs,
    };
  }
}
