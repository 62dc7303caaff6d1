import { describe, expect, it } from 'vitest';
import { fixture } from './fixtures/load-fixture';
import { parseStateFlags, parseXlList } from './xl-list.parser';

describe('parseXlList', () => {
  it('fixtures keep the real TABs of the header', () => {
    expect(fixture('xl-list-4.17.txt').split('\n')[0]).toBe(
      'Name                                        ID   Mem VCPUs\tState\tTime(s)',
    );
  });

  it('reads Xen 4.1 and 4.4 tables', () => {
    expect(
      parseXlList(fixture('xl-list-4.1.txt')).map((d) => [d.name, d.domid, d.memoryMb, d.vcpus]),
    ).toEqual([
      ['Domain-0', 0, 1024, 8],
      ['web-1', 1, 512, 1],
      ['db-1', 2, 2048, 2],
    ]);
    const d44 = parseXlList(fixture('xl-list-4.4.txt'));
    expect(d44[0]).toMatchObject({ name: 'Domain-0', cpuTimeS: 120934.2, state: 'r-----' });
    expect(d44).toHaveLength(3);
  });

  it('reads 4.17 with a name longer than 40 characters, a huge CPU time and every state', () => {
    const domains = parseXlList(fixture('xl-list-4.17.txt'));
    expect(domains).toHaveLength(8);
    const byName = new Map(domains.map((d) => [d.name, d]));
    expect(byName.get('tenant-analytics-warehouse-replica-eu-west-1')).toMatchObject({
      domid: 7,
      memoryMb: 8192,
      vcpus: 4,
      cpuTimeS: 10234567.9,
    });
    expect(byName.get('web-1')?.flags).toEqual({
      running: false,
      blocked: true,
      paused: false,
      shutdown: false,
      dying: false,
    });
    expect(byName.get('crashed')?.flags).toMatchObject({ shutdown: true, shutdownReason: 'crash' });
    expect(byName.get('rebooting')?.flags.shutdownReason).toBe('reboot');
    expect(byName.get('paused')?.flags.paused).toBe(true);
    expect(byName.get('going')?.flags.dying).toBe(true);
    expect(byName.get('runnable')?.state).toBe('------');
  });

  it('finds the header after a stderr warning merged into the output', () => {
    const domains = parseXlList(fixture('xl-list-4.20-stderr-merged.txt'));
    expect(domains.map((d) => d.name)).toEqual(['Domain-0', 'ci-runner-3']);
  });

  it('reads a terminal copy (TABs as spaces, trailing spaces, CRLF)', () => {
    const domains = parseXlList(fixture('xl-list-terminal-copy.txt'));
    expect(domains.map((d) => [d.name, d.cpuTimeS])).toEqual([
      ['Domain-0', 11794.3],
      ['web-1', 45.2],
    ]);
  });

  it('ignores the -v suffix columns and lines that are not rows', () => {
    const text =
      'Name                                        ID   Mem VCPUs\tState\tTime(s)   UUID                            Reason-Code\tSecurity Label\n' +
      'Domain-0                                     0  1024     2     r-----      12.0 00000000-0000-0000-0000-000000000000        -                -\n' +
      'libxl: warning: something unrelated\n' +
      '\n' +
      'web 1                                        5   512     1     ---ss-       3.5 5e0b1f5a-8c1e-4f0a-9b2d-3c4e5f607182        2                -\n';
    const domains = parseXlList(text);
    expect(domains).toHaveLength(2);
    expect(domains[1]).toMatchObject({ name: 'web 1', domid: 5, flags: { shutdownReason: 'suspend' } });
  });

  it('returns an empty list for a header without rows, and fails without a header', () => {
    expect(parseXlList('Name ID Mem VCPUs State Time(s)\n')).toEqual([]);
    expect(() => parseXlList('')).toThrow(expect.objectContaining({ code: 'ParseError' }));
    expect(() => parseXlList('Domain-0 0 1024 2 r----- 1.0\n')).toThrow(/no header/);
  });
});

describe('parseStateFlags', () => {
  it.each([
    ['---s--', 'poweroff'],
    ['---sr-', 'reboot'],
    ['---ss-', 'suspend'],
    ['---sc-', 'crash'],
    ['---sw-', 'watchdog'],
    ['---sS-', 'soft_reset'],
    ['---s?-', 'unknown'],
  ])('reads the shutdown reason of %s', (state, reason) => {
    expect(parseStateFlags(state).shutdownReason).toBe(reason);
  });
  it('has no reason when the domain is not shut down', () => {
    expect(parseStateFlags('r-----').shutdownReason).toBeUndefined();
    expect(parseStateFlags('-bp---')).toMatchObject({ blocked: true, paused: true, running: false });
  });
});
