import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Argv } from './xl.commands';
import * as file from './file.commands';
import * as lvm from './lvm.commands';
import * as xl from './xl.commands';

/**
 * The sudoers drop-in that ansible/playbooks/xen-host.yml installs must let the Norm user run
 * every command libs/xen issues, and nothing else. This reads the drop-in as rendered
 * (scripts/ci-ansible re-renders the template and fails if this copy is stale, and checks it
 * with `visudo -c -f`), so the test sees what a host gets.
 */
const RENDERED = join(
  __dirname,
  '..',
  '..',
  '..',
  '..',
  'ansible',
  'roles',
  'xen_host',
  'tests',
  'sudoers-norm.rendered',
);

/**
 * One call per builder, with valid arguments. Keyed by export name so a new builder without
 * an entry here fails the test instead of slipping past the drop-in.
 */
const SAMPLE_CALLS: Record<string, () => Argv> = {
  xlInfoArgv: () => xl.xlInfoArgv(),
  xlListArgv: () => xl.xlListArgv(),
  xlListLongArgv: () => xl.xlListLongArgv(),
  xlCreateArgv: () => xl.xlCreateArgv('/var/lib/norm/domains/web-1.cfg'),
  xlShutdownArgv: () => xl.xlShutdownArgv('web-1'),
  xlDestroyArgv: () => xl.xlDestroyArgv('web-1'),
  xlRebootArgv: () => xl.xlRebootArgv('web-1'),
  xlPauseArgv: () => xl.xlPauseArgv('web-1'),
  xlUnpauseArgv: () => xl.xlUnpauseArgv('web-1'),
  vgsArgv: () => lvm.vgsArgv(),
  lvsArgv: () => lvm.lvsArgv('vg0'),
  lvCreateArgv: () => lvm.lvCreateArgv('vg0', 'web-1', 1024),
  lvSnapshotArgv: () => lvm.lvSnapshotArgv('vg0', 'golden', 'web-1', 1024),
  lvRemoveArgv: () => lvm.lvRemoveArgv('vg0', 'web-1'),
  installRootOnlyArgv: () =>
    file.installRootOnlyArgv('/var/lib/norm/domains/.web-1.cfg.staged', '/var/lib/norm/domains/web-1.cfg'),
};

function builderNames(): string[] {
  return [...Object.entries(xl), ...Object.entries(lvm), ...Object.entries(file)]
    .filter(([name, value]) => typeof value === 'function' && name.endsWith('Argv'))
    .map(([name]) => name);
}

interface DropIn {
  /** The user specifications: who may run what, as whom, with which tags. */
  specs: Array<{ user: string; host: string; runAs: string; tags: string[]; commands: string[] }>;
  defaults: string[];
  /** Lines that are none of the above; the drop-in should have none. */
  other: string[];
}

/** Enough of the sudoers grammar for the drop-in's shape: Defaults, Cmnd_Alias and user specs. */
function parseDropIn(text: string): DropIn {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const aliases = new Map<string, string[]>();
  const dropIn: DropIn = { specs: [], defaults: [], other: [] };
  const list = (s: string): string[] => s.split(',').map((c) => c.trim());
  const expand = (items: string[]): string[] => items.flatMap((c) => aliases.get(c) ?? [c]);
  for (const line of lines) {
    const alias = /^Cmnd_Alias\s+([A-Z][A-Z0-9_]*)\s*=\s*(.+)$/.exec(line);
    const spec = /^(\S+)\s+(\S+)\s*=\s*\(([^)]*)\)\s*((?:[A-Z_]+:\s*)*)(.+)$/.exec(line);
    if (line.startsWith('Defaults')) dropIn.defaults.push(line);
    else if (alias) aliases.set(alias[1]!, list(alias[2]!));
    else if (spec)
      dropIn.specs.push({
        user: spec[1]!,
        host: spec[2]!,
        runAs: spec[3]!.trim(),
        tags: spec[4]!
          .split(':')
          .map((t) => t.trim())
          .filter(Boolean),
        commands: expand(list(spec[5]!)),
      });
    else dropIn.other.push(line);
  }
  return dropIn;
}

describe('sudoers drop-in for the norm user', () => {
  const dropIn = parseDropIn(readFileSync(RENDERED, 'utf8'));

  it('has a sample call for every command builder libs/xen exports', () => {
    expect(builderNames().sort()).toEqual(Object.keys(SAMPLE_CALLS).sort());
  });

  it('grants norm, as root, without a password, and has no other rules', () => {
    expect(dropIn.other).toEqual([]);
    expect(dropIn.specs).toHaveLength(1);
    expect(dropIn.specs[0]).toMatchObject({ user: 'norm', host: 'ALL', runAs: 'root', tags: ['NOPASSWD'] });
    // Defaults may only relax the terminal requirement for norm, never widen what it runs.
    expect(dropIn.defaults).toEqual(['Defaults:norm !requiretty']);
  });

  it('lists absolute command paths without argument restrictions or ALL', () => {
    for (const command of dropIn.specs[0]!.commands) {
      // /usr/sbin for xl and LVM, /usr/bin for coreutils' install, on Debian and CentOS alike.
      expect(command).toMatch(/^\/usr\/s?bin\/[a-z]+$/);
    }
  });

  it('covers every command the builders issue, and nothing else', () => {
    const issued = new Set(Object.values(SAMPLE_CALLS).map((call) => call()[0]));
    const allowed = new Set(dropIn.specs[0]!.commands.map((c) => basename(c)));
    expect([...allowed].sort()).toEqual([...issued].sort());
  });
});
