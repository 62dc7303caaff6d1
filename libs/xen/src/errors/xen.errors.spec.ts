import { DomainError } from '@norm/core';
import { describe, expect, it } from 'vitest';
import {
  classifyRemoteFailure,
  CommandTimeout,
  DomainExists,
  DomainNotFound,
  HostKeyMismatch,
  HostUnreachable,
  InsufficientMemory,
  InsufficientStorage,
  MAX_DETAIL_OUTPUT_CHARS,
  RemoteCommandFailed,
  type RemoteCommandOutcome,
  VolumeExists,
  VolumeNotFound,
  XlCommandError,
} from './xen.errors';

function outcome(
  argv: string[],
  stderr: string,
  over: Partial<RemoteCommandOutcome> = {},
): RemoteCommandOutcome {
  return { host: 'xen01', argv, exitCode: 1, stdout: '', stderr, durationMs: 42, ...over };
}

describe('classifyRemoteFailure: xl', () => {
  it.each([
    ['web-1 is an invalid domain identifier (rc=-6)\n', 'web-1'],
    ["Error: Domain '99' does not exist.\n", '99'],
    [
      "libxl: error: libxl_domain.c:341:libxl_domain_info: Domain 99:Getting domain info: No such process\nError: Domain '99' does not exist.\n",
      '99',
    ],
    ["Can't get domid of domain name 'web-1', maybe this domain does not exist.\n", 'web-1'],
  ])('maps %j to DomainNotFound', (stderr, domain) => {
    const err = classifyRemoteFailure(outcome(['xl', 'destroy', 'web-1'], stderr));
    expect(err).toBeInstanceOf(DomainNotFound);
    expect(err).toBeInstanceOf(RemoteCommandFailed);
    expect(err.code).toBe('DomainNotFound');
    expect(err.details).toMatchObject({
      domain,
      host: 'xen01',
      exitCode: 1,
      argv: ['xl', 'destroy', 'web-1'],
    });
  });

  it('maps the 4.1–4.5 numeric list failure and the destroy of a missing domid', () => {
    expect(
      classifyRemoteFailure(outcome(['xl', 'list', '99'], 'libxl_domain_info failed (code -6).\n')).code,
    ).toBe('DomainNotFound');
    const destroy =
      'libxl: error: libxl.c:1575:libxl__destroy_domid: Domain 99:Non-existant domain\ndestroy failed (rc=-21)\n';
    expect(classifyRemoteFailure(outcome(['xl', 'destroy', '99'], destroy)).code).toBe('DomainNotFound');
  });

  it.each([
    'libxl: error: libxl.c:420:libxl__domain_rename: domain with name "web-1" already exists.\nlibxl: error: libxl_create.c:682:initiate_domain_create: cannot make domain: -6\n',
    'libxl: error: libxl_domain.c:81:libxl__domain_rename: Domain 12:Domain with name "web-1" already exists.\nlibxl: error: libxl_create.c:1186:initiate_domain_create: Domain 12:cannot make domain: -6\n',
    'libxl: error: libxl.c:352:libxl_domain_rename domain with name "web-1" already exists.\ncannot make domain: -6\n',
  ])('maps every version of the name-in-use message to DomainExists', (stderr) => {
    const err = classifyRemoteFailure(
      outcome(
        ['xl', 'create', '/etc/xen/norm/web-1.cfg'],
        `Parsing config from /etc/xen/norm/web-1.cfg\n${stderr}`,
        { exitCode: 3 },
      ),
    );
    expect(err).toBeInstanceOf(DomainExists);
    expect(err.details.domain).toBe('web-1');
  });

  it.each([
    "xc: error: panic: xg_dom_boot.c:119: xc_dom_boot_mem_init: can't allocate low memory for domain: Out of memory\nlibxl: error: libxl_dom.c:593:libxl__build_dom: xc_dom_boot_mem_init failed: Cannot allocate memory\nlibxl: error: libxl_domain.c:1575:libxl__destroy_domid: Domain 9:Non-existant domain\n",
    'failed to free memory for the domain\n',
  ])('maps out-of-memory failures to InsufficientMemory', (stderr) => {
    const err = classifyRemoteFailure(
      outcome(['xl', 'create', '/etc/xen/norm/big.cfg'], stderr, { exitCode: 3 }),
    );
    expect(err).toBeInstanceOf(InsufficientMemory);
    expect(err.code).toBe('InsufficientMemory');
  });

  // Verbatim from the xen-real lab (Xen 4.17, dom0 starved of CPU): libxl gives the block
  // hotplug script 40 s, then unwinds. Not a missing domain despite the destroy lines, and not a
  // name clash: a create failure the requester sees with this stderr.
  it('maps a block hotplug timeout during xl create to XlCommandError', () => {
    const stderr = [
      'Parsing config from /var/lib/norm/domains/web-1.cfg',
      'libxl: error: libxl_aoutils.c:539:async_exec_timeout: killing execution of /etc/xen/scripts/block add because of timeout',
      'libxl: error: libxl_create.c:1672:domcreate_launch_dm: Domain 4:unable to add disk devices',
      'libxl: error: libxl_domain.c:1183:libxl__destroy_domid: Domain 4:Non-existant domain',
      'libxl: error: libxl_domain.c:1137:domain_destroy_callback: Domain 4:Unable to destroy guest',
      'libxl: error: libxl_domain.c:1064:domain_destroy_cb: Domain 4:Destruction of domain failed',
      '',
    ].join('\n');
    const err = classifyRemoteFailure(
      outcome(['sudo', '-n', 'xl', 'create', '/var/lib/norm/domains/web-1.cfg'], stderr, { exitCode: 3 }),
    );
    expect(err).toBeInstanceOf(XlCommandError);
    expect(err.details).toMatchObject({ exitCode: 3 });
  });

  it('maps any other xl failure to XlCommandError, also behind sudo -n', () => {
    const err = classifyRemoteFailure(
      outcome(
        ['sudo', '-n', 'xl', 'create', '/etc/xen/norm/x.cfg'],
        "/etc/xen/norm/x.cfg:3: config parsing error near `-': lexical error\n",
      ),
    );
    expect(err).toBeInstanceOf(XlCommandError);
    expect(err.code).toBe('XlCommandError');
    expect(
      classifyRemoteFailure(
        outcome(['sudo', '-n', 'xl', 'destroy', 'x'], 'x is an invalid domain identifier (rc=-6)'),
      ).code,
    ).toBe('DomainNotFound');
  });
});

describe('classifyRemoteFailure: LVM and others', () => {
  it('maps a missing LV to VolumeNotFound', () => {
    const err = classifyRemoteFailure(
      outcome(['lvremove', '-f', 'vg0/web-1'], '  Failed to find logical volume "vg0/web-1"\n', {
        exitCode: 5,
      }),
    );
    expect(err).toBeInstanceOf(VolumeNotFound);
    expect(err.code).toBe('RemoteCommandError');
    expect(err.details).toMatchObject({ kind: 'VolumeNotFound', volume: 'vg0/web-1' });
  });

  it('maps an existing LV to VolumeExists (both capitalisations)', () => {
    for (const text of [
      '  Logical Volume "web-1" already exists in volume group "vg0"\n',
      '  Logical volume "web-1" already exists in volume group "vg0"\n',
    ]) {
      const err = classifyRemoteFailure(
        outcome(['sudo', '-n', 'lvcreate', '-y', '-L', '10m', '-n', 'web-1', 'vg0'], text),
      );
      expect(err).toBeInstanceOf(VolumeExists);
      expect(err.details).toMatchObject({ kind: 'VolumeExists', volume: 'vg0/web-1' });
    }
  });

  it('maps a full VG to InsufficientStorage', () => {
    const err = classifyRemoteFailure(
      outcome(
        ['lvcreate', '-y', '-L', '999999m', '-n', 'x', 'vg0'],
        '  Volume group "vg0" has insufficient free space (255 extents): 249999 required.\n',
      ),
    );
    expect(err).toBeInstanceOf(InsufficientStorage);
    expect(err.details).toMatchObject({ kind: 'InsufficientStorage', volumeGroup: 'vg0' });
  });

  it('keeps everything else as RemoteCommandError with the outcome in details', () => {
    const err = classifyRemoteFailure(
      outcome(['vgs'], '', { exitCode: null, signal: 'KILL', stdout: 'partial', durationMs: 7 }),
    );
    expect(err).toBeInstanceOf(RemoteCommandFailed);
    expect(err.code).toBe('RemoteCommandError');
    expect(err.message).toBe('remote command failed');
    expect(err.details).toEqual({
      kind: 'RemoteCommandError',
      host: 'xen01',
      argv: ['vgs'],
      exitCode: null,
      signal: 'KILL',
      stderr: '',
      stdout: 'partial',
      durationMs: 7,
    });
  });

  it('does not confuse an xl message printed by another tool', () => {
    expect(
      classifyRemoteFailure(outcome(['cat', '/x'], 'x is an invalid domain identifier (rc=-6)')).code,
    ).toBe('RemoteCommandError');
  });

  it('bounds the output kept in details and keeps messages fixed', () => {
    const err = classifyRemoteFailure(
      outcome(['xl', 'info'], 'e'.repeat(20000), { stdout: 'password=hunter2' }),
    );
    expect(String(err.details.stderr).length).toBeLessThan(MAX_DETAIL_OUTPUT_CHARS + 40);
    expect(err.message).toBe('xl command failed');
    expect(err.message).not.toContain('hunter2');
  });
});

describe('transport errors', () => {
  it('carry their codes and details, and only the transient ones say so', () => {
    const unreachable = new HostUnreachable('xen01', 'ECONNREFUSED', { port: 22 });
    expect(unreachable).toBeInstanceOf(DomainError);
    expect(unreachable.details).toEqual({ host: 'xen01', reason: 'ECONNREFUSED', port: 22 });
    expect(unreachable.transient).toBe(true);

    const mismatch = new HostKeyMismatch('xen01', 'SHA256:aaa', 'SHA256:bbb');
    expect(mismatch.code).toBe('HostKeyMismatch');
    expect(mismatch.details).toEqual({ host: 'xen01', expected: 'SHA256:aaa', actual: 'SHA256:bbb' });
    expect(mismatch.transient).toBe(false);

    const timeout = new CommandTimeout('xen01', ['xl', 'shutdown', '-w', 'x'], 30000);
    expect(timeout.details).toEqual({ host: 'xen01', argv: ['xl', 'shutdown', '-w', 'x'], timeoutMs: 30000 });
    expect(timeout.transient).toBe(true);
  });
});
