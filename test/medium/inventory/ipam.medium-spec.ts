import { randomUUID } from 'node:crypto';
import { isXenMac, type NetworkRecord } from '@norm/core';
import { NetworkRepository, PgInventoryUnitOfWork, PgIpamStore } from '@norm/inventory';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/test-database';

const db = useTestDatabase();

describe('IPAM on Postgres', () => {
  let uow: PgInventoryUnitOfWork;
  let net: NetworkRecord;
  beforeAll(async () => {
    uow = new PgInventoryUnitOfWork(db.dataSource);
    net = await new NetworkRepository(db.dataSource.manager).create({
      name: 'race',
      bridge: 'xenbr0',
      cidr: '10.20.0.0/24',
      gateway: '10.20.0.1',
      rangeStart: '10.20.0.10',
      rangeEnd: '10.20.0.250',
    });
  });

  it('hands out 50 distinct lowest IPs and distinct Xen MACs to 50 concurrent allocations', async () => {
    const instances = Array.from({ length: 50 }, () => randomUUID());
    const got = await Promise.all(instances.map((id) => uow.run((tx) => tx.ipam.allocate(net.id, id))));
    const ips = got.map((a) => a.ip);
    expect(new Set(ips).size).toBe(50);
    expect(new Set(got.map((a) => a.mac)).size).toBe(50);
    for (const a of got) expect(isXenMac(a.mac)).toBe(true);
    const expected = Array.from({ length: 50 }, (_, i) => `10.20.0.${10 + i}`);
    expect([...ips].sort()).toEqual([...expected].sort());
  });

  it('is idempotent per instance and refills the lowest released address', async () => {
    const id = randomUUID();
    const a = await uow.run((tx) => tx.ipam.allocate(net.id, id));
    const again = await uow.run((tx) => tx.ipam.allocate(net.id, id));
    expect(again).toEqual(a);
    const live = await uow.run((tx) => tx.ipam.listLive(net.id));
    const victim = live.find((x) => x.ip === '10.20.0.12');
    expect(victim?.instanceId).toBeTruthy();
    const released = await uow.run((tx) =>
      tx.ipam.release({
        instanceId: victim!.instanceId!,
        hostId: randomUUID(),
        domainName: 'gone',
        evidence: 'destroyed',
        confirmedAt: new Date(),
      }),
    );
    expect(released).toBe(1);
    const next = await uow.run((tx) => tx.ipam.allocate(net.id, randomUUID()));
    expect(next.ip).toBe('10.20.0.12');
  });

  it('counts up across an octet, skips the gateway inside the range, then says full', async () => {
    const edge = await new NetworkRepository(db.dataSource.manager).create({
      name: 'edge',
      bridge: 'xenbr2',
      cidr: '10.50.0.0/23',
      gateway: '10.50.1.0',
      rangeStart: '10.50.0.254',
      rangeEnd: '10.50.1.1',
    });
    const got: string[] = [];
    for (let i = 0; i < 3; i++) got.push((await uow.run((tx) => tx.ipam.allocate(edge.id, randomUUID()))).ip);
    expect(got).toEqual(['10.50.0.254', '10.50.0.255', '10.50.1.1']);
    await expect(uow.run((tx) => tx.ipam.allocate(edge.id, randomUUID()))).rejects.toThrow(/no free address/);
  });

  it('retries a MAC collision with a fresh draw instead of failing', async () => {
    const other = await new NetworkRepository(db.dataSource.manager).create({
      name: 'mac',
      bridge: 'xenbr1',
      cidr: '10.30.0.0/24',
      gateway: null,
      rangeStart: '10.30.0.10',
      rangeEnd: '10.30.0.20',
    });
    // Each allocation draws its candidates up front: the first always 00:00:01, the second
    // 00:00:01 (live by then) and then 00:00:02.
    const drawing = (draws: number[][]) => (): Uint8Array => Uint8Array.from(draws.shift() ?? [9, 9, 9]);
    const first = await db.dataSource.transaction((m) =>
      new PgIpamStore(m, drawing([[0, 0, 1]])).allocate(other.id, randomUUID()),
    );
    const second = await db.dataSource.transaction((m) =>
      new PgIpamStore(
        m,
        drawing([
          [0, 0, 1],
          [0, 0, 2],
        ]),
      ).allocate(other.id, randomUUID()),
    );
    expect(first.mac).toBe('00:16:3e:00:00:01');
    expect(second.mac).toBe('00:16:3e:00:00:02');
  });

  it('says the network is full, and the database refuses a duplicate live IP even past the code', async () => {
    const tiny = await new NetworkRepository(db.dataSource.manager).create({
      name: 'tiny',
      bridge: 'xenbr2',
      cidr: '10.40.0.0/30',
      gateway: null,
      rangeStart: '10.40.0.1',
      rangeEnd: '10.40.0.1',
    });
    const a = await uow.run((tx) => tx.ipam.allocate(tiny.id, randomUUID()));
    await expect(uow.run((tx) => tx.ipam.allocate(tiny.id, randomUUID()))).rejects.toMatchObject({
      code: 'Conflict',
    });
    await expect(
      db.dataSource.query(
        `INSERT INTO "ip_allocations" ("pool_id", "ip", "mac") VALUES ($1, $2, '00:16:3e:7f:00:01')`,
        [tiny.id, a.ip],
      ),
    ).rejects.toThrow(/uq_ip_allocations_live_ip/);
    await expect(
      db.dataSource.query(
        `INSERT INTO "ip_allocations" ("pool_id", "ip", "mac") VALUES ($1, '10.40.0.2', $2)`,
        [tiny.id, a.mac],
      ),
    ).rejects.toThrow(/uq_ip_allocations_live_mac/);
  });

  it('refuses a network whose range leaves its CIDR, at the database too', async () => {
    await expect(
      new NetworkRepository(db.dataSource.manager).create({
        name: 'bad',
        bridge: 'xenbr0',
        cidr: '10.50.0.0/24',
        gateway: null,
        rangeStart: '10.50.0.10',
        rangeEnd: '10.50.1.10',
      }),
    ).rejects.toThrow(/ck_ip_pools_range/);
  });
});
