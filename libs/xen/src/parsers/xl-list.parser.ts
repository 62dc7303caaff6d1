import { type DomainStateFlags, type DomainSummary } from '@norm/core';
import { parseError, splitLines } from './parse-error';

/**
 * `xl list` (XL.md §1.2–1.4). The header's TABs often arrive as spaces and names longer
 * than 40 characters push the columns right, so both header and rows are matched on
 * whitespace-separated fields, never on columns. Rows are read from the right: the six
 * state characters anchor the numbers, so a name may even contain spaces.
 */
const HEADER = /^\s*Name\s+ID\s+Mem\s+VCPUs\s+State\s+Time\(s\)/;
const ROW =
  /^(\S.*?)\s+([0-9]+)\s+([0-9]+)\s+([0-9]+)\s+([r-][b-][p-][s-][-rscwS?][d-])\s+([0-9]+(?:\.[0-9]+)?)(?:\s.*)?$/;

const REASONS: Readonly<Record<string, DomainStateFlags['shutdownReason']>> = {
  '-': 'poweroff',
  r: 'reboot',
  s: 'suspend',
  c: 'crash',
  w: 'watchdog',
  S: 'soft_reset',
  '?': 'unknown',
};

export function parseStateFlags(state: string): DomainStateFlags {
  const shutdown = state[3] === 's';
  const flags: DomainStateFlags = {
    running: state[0] === 'r',
    blocked: state[1] === 'b',
    paused: state[2] === 'p',
    shutdown,
    dying: state[5] === 'd',
  };
  // The reason letter is meaningful only once the guest has shut down (xl prints `-` otherwise).
  if (shutdown) flags.shutdownReason = REASONS[state[4] ?? '?'] ?? 'unknown';
  return flags;
}

export function parseXlList(text: string): DomainSummary[] {
  const lines = splitLines(text);
  const headerAt = lines.findIndex((l) => HEADER.test(l));
  if (headerAt < 0) throw parseError('xl list', 'no header line (Name ID Mem VCPUs State Time(s))');
  const domains: DomainSummary[] = [];
  for (const line of lines.slice(headerAt + 1)) {
    const m = ROW.exec(line.trimEnd());
    if (!m) continue;
    const [, name, domid, mem, vcpus, state, time] = m;
    if (name === undefined || state === undefined) continue;
    domains.push({
      name: name.trimEnd(),
      domid: Number(domid),
      memoryMb: Number(mem),
      vcpus: Number(vcpus),
      state,
      flags: parseStateFlags(state),
      cpuTimeS: Number(time),
    });
  }
  return domains;
}
