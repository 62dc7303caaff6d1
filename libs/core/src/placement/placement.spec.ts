import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PLACEMENT_OPTIONS,
  type PlacementHost,
  type PlacementOptions,
  type PlacementRequest,
  planPlacement,
  withPlaced,
} from './placement';

function host(name: string, over: Partial<PlacementHost> = {}): PlacementHost {
  return {
    id: `id-${name}`,
    name,
    status: 'online',
    maintenance: false,
    placementBlockedReason: null,
    freeMemoryMb: 16_384,
    nrCpus: 8,
    storageFreeMb: 500_000,
    allocatedVcpus: 0,
    promised: { memoryMb: 0, vcpus: 0, diskMb: 0 },
    groupMembers: {},
    ...over,
  };
}

const small: PlacementRequest = { memoryMb: 1024, vcpus: 1, diskGb: 10 };
const opts: PlacementOptions = { strategy: 'spread', dom0ReserveMb: 1024, vcpuOvercommitRatio: 2 };

function codes(plan: ReturnType<typeof planPlacement>, name: string): string[] {
  return plan.rejected.find((r) => r.hostName === name)?.reasons.map((r) => r.code) ?? [];
}

describe('planPlacement filters', () => {
  it('rejects hosts that are not online, in maintenance, blocked or never synced, with a reason each', () => {
    const plan = planPlacement(
      small,
      [
        host('down', { status: 'unreachable' }),
        host('new', { status: 'unknown', freeMemoryMb: null, nrCpus: null, storageFreeMb: null }),
        host('maint', { maintenance: true }),
        host('blocked', { placementBlockedReason: '3 failed provisions' }),
        host('ok'),
      ],
      opts,
    );
    expect(plan.chosen?.hostName).toBe('ok');
    expect(codes(plan, 'down')).toEqual(['not_online']);
    expect(codes(plan, 'new')).toEqual(['not_online', 'not_synced']);
    expect(codes(plan, 'maint')).toEqual(['maintenance']);
    expect(codes(plan, 'blocked')).toEqual(['placement_blocked']);
    expect(plan.rejected.find((r) => r.hostName === 'blocked')?.reasons[0]?.message).toContain(
      '3 failed provisions',
    );
  });

  it('keeps the dom0 reserve free (host limit overrides the fleet option)', () => {
    const req = { ...small, memoryMb: 2048 };
    expect(planPlacement(req, [host('a', { freeMemoryMb: 3072 })], opts).chosen?.hostName).toBe('a');
    const tight = planPlacement(req, [host('a', { freeMemoryMb: 3071 })], opts);
    expect(tight.chosen).toBeNull();
    expect(codes(tight, 'a')).toEqual(['insufficient_memory']);
    const override = planPlacement(
      req,
      [host('a', { freeMemoryMb: 2048, limits: { dom0ReserveMb: 0 } })],
      opts,
    );
    expect(override.chosen?.hostName).toBe('a');
  });

  it('counts promised capacity as used', () => {
    const promised = { memoryMb: 8192, vcpus: 0, diskMb: 0 };
    const plan = planPlacement(
      { ...small, memoryMb: 8192 },
      [host('a', { freeMemoryMb: 16_384, promised })],
      opts,
    );
    expect(codes(plan, 'a')).toEqual(['insufficient_memory']);
    const disk = planPlacement(
      small,
      [host('a', { storageFreeMb: 20_480, promised: { memoryMb: 0, vcpus: 0, diskMb: 15_000 } })],
      opts,
    );
    expect(codes(disk, 'a')).toEqual(['insufficient_storage']);
  });

  it('enforces the vCPU overcommit ratio including running and promised vCPUs', () => {
    const h = host('a', { nrCpus: 4, allocatedVcpus: 6, promised: { memoryMb: 0, vcpus: 1, diskMb: 0 } });
    expect(planPlacement({ ...small, vcpus: 1 }, [h], opts).chosen?.hostName).toBe('a');
    const plan = planPlacement({ ...small, vcpus: 2 }, [h], opts);
    expect(codes(plan, 'a')).toEqual(['vcpu_overcommit']);
    expect(plan.rejected[0]?.reasons[0]?.data).toMatchObject({ vcpusAfter: 9, limit: 8 });
  });

  it('explains an impossible placement', () => {
    const plan = planPlacement(small, [host('a', { maintenance: true })], opts);
    expect(plan.chosen).toBeNull();
    expect(plan.reason).toBe('no host passes the placement filters');
    expect(planPlacement(small, [], opts).reason).toBe('no hosts are registered');
  });
});

describe('planPlacement weights', () => {
  const hosts = [host('big', { freeMemoryMb: 32_768 }), host('mid'), host('tiny', { freeMemoryMb: 4096 })];
  it('spreads to the host with the most memory left by default', () => {
    expect(planPlacement(small, hosts).chosen?.hostName).toBe('big');
    expect(DEFAULT_PLACEMENT_OPTIONS.strategy).toBe('spread');
  });
  it('packs onto the fullest host that still fits', () => {
    const plan = planPlacement(small, hosts, { ...opts, strategy: 'pack' });
    expect(plan.candidates.map((c) => c.hostName)).toEqual(['tiny', 'mid', 'big']);
  });
  it('breaks ties by name so equal hosts give a stable answer', () => {
    expect(planPlacement(small, [host('b'), host('a'), host('c')], opts).chosen?.hostName).toBe('a');
  });
});

describe('planPlacement anti-affinity', () => {
  const group = { group: 'db', mode: 'hard' as const };
  it('hard: never lands beside a group member', () => {
    const plan = planPlacement(
      { ...small, antiAffinity: group },
      [host('a', { groupMembers: { db: 1 }, freeMemoryMb: 64_000 }), host('b')],
      opts,
    );
    expect(plan.chosen?.hostName).toBe('b');
    expect(codes(plan, 'a')).toEqual(['anti_affinity']);
  });
  it('hard: fails with a clear reason when every host with capacity holds a member', () => {
    const plan = planPlacement(
      { ...small, antiAffinity: group },
      [
        host('a', { groupMembers: { db: 1 } }),
        host('b', { groupMembers: { db: 2 } }),
        host('c', { maintenance: true }),
      ],
      opts,
    );
    expect(plan.chosen).toBeNull();
    expect(plan.reason).toBe(
      'hard anti-affinity group "db": every host with capacity already holds a member',
    );
  });
  it('soft: prefers a host without members, else the one with the fewest, and says so', () => {
    const soft = { ...small, antiAffinity: { group: 'db', mode: 'soft' as const } };
    const free = planPlacement(
      soft,
      [host('a', { groupMembers: { db: 1 }, freeMemoryMb: 64_000 }), host('b')],
      opts,
    );
    expect(free.chosen?.hostName).toBe('b');
    expect(free.antiAffinityRelaxed).toBe(false);
    const relaxed = planPlacement(
      soft,
      [host('a', { groupMembers: { db: 2 } }), host('b', { groupMembers: { db: 1 } })],
      opts,
    );
    expect(relaxed.chosen?.hostName).toBe('b');
    expect(relaxed.antiAffinityRelaxed).toBe(true);
  });
  it('ignores other groups', () => {
    const plan = planPlacement(
      { ...small, antiAffinity: group },
      [host('a', { groupMembers: { web: 3 } })],
      opts,
    );
    expect(plan.chosen?.hostName).toBe('a');
  });
});

describe('planPlacement properties', () => {
  const arbHost = fc.record({
    name: fc.stringMatching(/^[a-z]{1,6}$/),
    status: fc.constantFrom<PlacementHost['status']>('online', 'online', 'online', 'unreachable', 'unknown'),
    maintenance: fc.boolean(),
    blocked: fc.boolean(),
    freeMemoryMb: fc.option(fc.integer({ min: 0, max: 256_000 }), { nil: null, freq: 8 }),
    nrCpus: fc.integer({ min: 1, max: 64 }),
    storageFreeMb: fc.integer({ min: 0, max: 2_000_000 }),
    allocatedVcpus: fc.integer({ min: 0, max: 200 }),
    promisedMem: fc.integer({ min: 0, max: 64_000 }),
    members: fc.integer({ min: 0, max: 2 }),
  });
  const arbHosts = fc.uniqueArray(arbHost, { selector: (h) => h.name, maxLength: 12 }).map((hs) =>
    hs.map((h) =>
      host(h.name, {
        status: h.status,
        maintenance: h.maintenance,
        placementBlockedReason: h.blocked ? 'blocked' : null,
        freeMemoryMb: h.freeMemoryMb,
        nrCpus: h.nrCpus,
        storageFreeMb: h.storageFreeMb,
        allocatedVcpus: h.allocatedVcpus,
        promised: { memoryMb: h.promisedMem, vcpus: 0, diskMb: 0 },
        groupMembers: h.members > 0 ? { g: h.members } : {},
      }),
    ),
  );
  const arbRequest = fc.record({
    memoryMb: fc.integer({ min: 128, max: 64_000 }),
    vcpus: fc.integer({ min: 1, max: 16 }),
    diskGb: fc.integer({ min: 1, max: 500 }),
    antiAffinity: fc.option(
      fc.record({
        group: fc.constant('g'),
        mode: fc.constantFrom<'hard' | 'soft'>('hard', 'soft'),
      }),
      { nil: undefined },
    ),
  });
  const arbOptions = fc.record({
    strategy: fc.constantFrom<'spread' | 'pack'>('spread', 'pack'),
    dom0ReserveMb: fc.integer({ min: 0, max: 4096 }),
    vcpuOvercommitRatio: fc.constantFrom(1, 1.5, 2, 4, 8),
  });

  it('never picks a host that fails a filter, and accounts for every host exactly once', () => {
    fc.assert(
      fc.property(arbRequest, arbHosts, arbOptions, (req, hosts, o) => {
        const plan = planPlacement(req, hosts, o);
        expect(plan.candidates.length + plan.rejected.length).toBe(hosts.length);
        for (const r of plan.rejected) expect(r.reasons.length).toBeGreaterThan(0);
        if (!plan.chosen) {
          expect(plan.candidates).toEqual([]);
          expect(plan.reason).toBeTruthy();
          return;
        }
        const h = hosts.find((x) => x.id === plan.chosen?.hostId);
        if (!h) throw new Error('chosen host is not one of the inputs');
        expect(h.status).toBe('online');
        expect(h.maintenance).toBe(false);
        expect(h.placementBlockedReason).toBeNull();
        expect((h.freeMemoryMb ?? 0) - h.promised.memoryMb - o.dom0ReserveMb).toBeGreaterThanOrEqual(
          req.memoryMb,
        );
        expect(h.storageFreeMb ?? 0).toBeGreaterThanOrEqual(req.diskGb * 1024);
        expect(h.allocatedVcpus + req.vcpus).toBeLessThanOrEqual(
          Math.floor((h.nrCpus ?? 0) * o.vcpuOvercommitRatio),
        );
        if (req.antiAffinity?.mode === 'hard') expect(h.groupMembers.g ?? 0).toBe(0);
      }),
    );
  });

  it('spread picks the most memory left and pack the least, among equally affine candidates', () => {
    fc.assert(
      fc.property(arbRequest, arbHosts, arbOptions, (req, hosts, o) => {
        const plan = planPlacement(req, hosts, o);
        if (!plan.chosen) return;
        const peers = plan.candidates.filter((c) => c.groupMembers === plan.chosen?.groupMembers);
        const left = peers.map((c) => c.memoryLeftMb);
        const best = o.strategy === 'spread' ? Math.max(...left) : Math.min(...left);
        expect(plan.chosen.memoryLeftMb).toBe(best);
        for (const c of plan.candidates)
          expect(c.groupMembers).toBeGreaterThanOrEqual(plan.chosen.groupMembers);
      }),
    );
  });

  it('is deterministic regardless of host order', () => {
    fc.assert(
      fc.property(arbRequest, arbHosts, arbOptions, (req, hosts, o) => {
        const a = planPlacement(req, hosts, o).chosen?.hostId;
        const b = planPlacement(req, [...hosts].reverse(), o).chosen?.hostId;
        expect(b).toBe(a);
      }),
    );
  });
});

describe('placing several requests in one pass', () => {
  it('withPlaced promises the capacity and counts the member, leaving the input alone', () => {
    const before = host('a', { groupMembers: { web: 1 } });
    const after = withPlaced(before, {
      memoryMb: 2048,
      vcpus: 2,
      diskGb: 3,
      antiAffinity: { group: 'web', mode: 'soft' },
    });
    expect(after.promised).toEqual({ memoryMb: 2048, vcpus: 2, diskMb: 3072 });
    expect(after.groupMembers).toEqual({ web: 2 });
    expect(before.promised).toEqual({ memoryMb: 0, vcpus: 0, diskMb: 0 });
    expect(before.groupMembers).toEqual({ web: 1 });
    expect(withPlaced(before, small).groupMembers).toBe(before.groupMembers);
  });

  it('decided in turn, a burst spreads evenly and stops exactly at capacity, as one at a time would', () => {
    // 16 GiB less the 1 GiB reserve: five 3 GiB VMs per host.
    let hosts = [host('a'), host('b')];
    const ask: PlacementRequest = { memoryMb: 3072, vcpus: 1, diskGb: 1 };
    const chosen: Array<string | null> = [];
    for (let i = 0; i < 12; i++) {
      const plan = planPlacement(ask, hosts, opts);
      chosen.push(plan.chosen?.hostName ?? null);
      if (plan.chosen) hosts = hosts.map((h) => (h.id === plan.chosen!.hostId ? withPlaced(h, ask) : h));
    }
    expect(chosen.filter((c) => c === 'a')).toHaveLength(5);
    expect(chosen.filter((c) => c === 'b')).toHaveLength(5);
    expect(chosen.slice(10)).toEqual([null, null]);
    // Spread alternates: neither host is ever two ahead.
    for (let i = 1; i <= 10; i++) {
      const seen = chosen.slice(0, i);
      expect(
        Math.abs(seen.filter((c) => c === 'a').length - seen.filter((c) => c === 'b').length),
      ).toBeLessThanOrEqual(1);
    }
  });
});
