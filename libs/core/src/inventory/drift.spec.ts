import { describe, expect, it } from 'vitest';
import { type DriftHost, type DriftInstance, diffDomains } from './drift';
import { type ObservedDomain } from './observed-domain';

const at = new Date('2026-01-01T00:00:00Z');
const dom = (name: string, domid = 1): ObservedDomain => ({
  name,
  domid,
  memoryMb: 512,
  vcpus: 1,
  state: '-b----',
  macs: [],
  dying: false,
});
const host = (id: string, domains: ObservedDomain[], over: Partial<DriftHost> = {}): DriftHost => ({
  id,
  name: `xen-${id}`,
  status: 'online',
  observedAt: at,
  observedDomains: domains,
  ...over,
});
const inst = (id: string, hostId: string | null, state = 'running'): DriftInstance => ({
  id,
  name: `vm-${id}`,
  domainName: `norm-${id}`,
  hostId,
  state,
});

describe('diffDomains', () => {
  it('reports nothing when hosts and instances agree', () => {
    expect(diffDomains([host('a', [dom('norm-1')])], [inst('1', 'a')])).toEqual([]);
  });

  it('reports an orphan domain with what, where and when', () => {
    const drift = diffDomains([host('a', [dom('stray', 7)])], []);
    expect(drift).toEqual([
      { kind: 'orphan_domain', hostId: 'a', hostName: 'xen-a', seenAt: at, domain: dom('stray', 7) },
    ]);
  });

  it('treats domains of decommissioned or failed instances as orphans, and provisioning ones as known', () => {
    const drift = diffDomains(
      [host('a', [dom('norm-1'), dom('norm-2', 2), dom('norm-3', 3)])],
      [inst('1', 'a', 'decommissioned'), inst('2', 'a', 'failed'), inst('3', 'a', 'provisioning')],
    );
    expect(drift.map((d) => d.kind === 'orphan_domain' && d.domain.name)).toEqual(['norm-1', 'norm-2']);
  });

  it('reports a running instance its host does not list as vanished', () => {
    const drift = diffDomains([host('a', [])], [inst('1', 'a')]);
    expect(drift).toEqual([
      {
        kind: 'vanished_instance',
        instanceId: '1',
        instanceName: 'vm-1',
        domainName: 'norm-1',
        hostId: 'a',
        hostName: 'xen-a',
        checkedAt: at,
      },
    ]);
  });

  it('does not call an instance vanished when its host is unreachable or never synced', () => {
    expect(diffDomains([host('a', [], { status: 'unreachable' })], [inst('1', 'a')])).toEqual([]);
    expect(diffDomains([host('a', [], { observedAt: null })], [inst('1', 'a')])).toEqual([]);
    expect(diffDomains([host('a', [])], [inst('1', 'a', 'stopped')])).toEqual([]);
  });

  it('reports a domain found on another host as wrong_host, not as vanished', () => {
    const drift = diffDomains([host('a', []), host('b', [dom('norm-1', 4)])], [inst('1', 'a')]);
    expect(drift).toEqual([
      {
        kind: 'wrong_host',
        instanceId: '1',
        instanceName: 'vm-1',
        domainName: 'norm-1',
        expectedHostId: 'a',
        expectedHostName: 'xen-a',
        hostId: 'b',
        hostName: 'xen-b',
        seenAt: at,
        domain: dom('norm-1', 4),
      },
    ]);
  });

  it('reports a duplicate on a second host while the right host still has it', () => {
    const drift = diffDomains([host('a', [dom('norm-1')]), host('b', [dom('norm-1')])], [inst('1', 'a')]);
    expect(drift.map((d) => [d.kind, d.hostId])).toEqual([['wrong_host', 'b']]);
  });

  it('ignores domains on hosts it cannot currently see', () => {
    expect(diffDomains([host('a', [dom('stray')], { status: 'unreachable' })], [])).toEqual([]);
  });
});
