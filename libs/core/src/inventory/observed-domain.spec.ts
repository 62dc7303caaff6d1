import { describe, expect, it } from 'vitest';
import { type DomainDetail, type DomainSummary } from '../ports';
import { observeDomains } from './observed-domain';

const flags = { running: false, blocked: true, paused: false, shutdown: false, dying: false };
const row = (name: string, domid: number): DomainSummary => ({
  name,
  domid,
  memoryMb: 1024,
  vcpus: 2,
  state: '-b----',
  flags,
  cpuTimeS: 1,
});
const detail = (name: string, domid: number, mac?: string): DomainDetail => ({
  name,
  domid,
  uuid: `uuid-${name}`,
  disks: [],
  nics: mac ? [{ mac, bridge: 'xenbr0' }] : [],
});

describe('observeDomains', () => {
  it('drops Domain-0 and joins details by domid and name', () => {
    const out = observeDomains(
      [row('Domain-0', 0), row('b', 5), row('a', 3)],
      [detail('a', 3, '00:16:3E:00:00:01'), detail('b-recreated', 5)],
    );
    expect(out).toEqual([
      {
        name: 'a',
        domid: 3,
        memoryMb: 1024,
        vcpus: 2,
        state: '-b----',
        macs: ['00:16:3e:00:00:01'],
        dying: false,
        uuid: 'uuid-a',
      },
      { name: 'b', domid: 5, memoryMb: 1024, vcpus: 2, state: '-b----', macs: [], dying: false },
    ]);
  });
});
