import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PERMISSION_DOCS, PERMISSIONS, permissionsTable, ROLE_GRANTS, ROLES } from './permissions';

const cells = (line: string): string[] =>
  line
    .trim()
    .replace(/^\||\|$/g, '')
    .split('|')
    .map((c) => c.trim());

describe('README role table', () => {
  it('is the table printed from ROLE_GRANTS (regenerate: node -r ./scripts/register.js scripts/permissions-table.ts)', () => {
    const readme = readFileSync(join(__dirname, '../../../../README.md'), 'utf8').split('\n');
    const want = permissionsTable().split('\n');
    const header = readme.findIndex((l) => l.startsWith('|') && cells(l)[0] === 'permission');
    expect(header, 'role table missing from the README').toBeGreaterThan(-1);
    const got = readme.slice(header, header + want.length);
    // Prettier pads cells and rulers; compare cell by cell, rulers by count.
    expect(cells(got[0]!)).toEqual(cells(want[0]!));
    expect(cells(got[1]!).length).toBe(cells(want[1]!).length);
    expect(got.slice(2).map(cells)).toEqual(want.slice(2).map(cells));
    expect(readme[header + want.length]?.startsWith('|')).toBe(false);
  });

  it('matches what the brief asks of each role', () => {
    const writes = (role: (typeof ROLES)[number]): string[] =>
      Object.keys(ROLE_GRANTS[role]).filter((p) => /:(write|create|act|decide|verify)$/.test(p));
    // viewer: read only (its own tokens aside)
    expect(writes('viewer')).toEqual(['tokens:write']);
    expect(ROLE_GRANTS.viewer['tokens:write']).toBe('own');
    // requester: creates requests, acts on its own requests and instances, and nothing else
    expect(writes('requester').sort()).toEqual([
      'instances:act',
      'tokens:write',
      'vm-requests:act',
      'vm-requests:create',
    ]);
    expect(
      Object.entries(ROLE_GRANTS.requester).filter(
        ([p, s]) => s === 'any' && !p.endsWith(':read') && p !== 'tokens:self',
      ),
    ).toEqual([]);
    // approver: decides, reads, writes nothing else
    expect(writes('approver').sort()).toEqual(['approvals:decide', 'tokens:write']);
    // operator: hosts, images, networks, maintenance, actions on any instance
    for (const p of [
      'hosts:write',
      'images:write',
      'networks:write',
      'maintenance:write',
      'instances:act',
    ] as const) {
      expect([p, ROLE_GRANTS.operator[p]]).toEqual([p, 'any']);
    }
    expect(ROLE_GRANTS.operator['principals:write']).toBeUndefined();
    // admin: everything on any object, except the instance-only heartbeat
    for (const p of PERMISSIONS) {
      expect([p, ROLE_GRANTS.admin[p]]).toEqual([p, p === 'instances:heartbeat' ? undefined : 'any']);
    }
    // no role may beat for an instance
    for (const r of ROLES) expect(ROLE_GRANTS[r]['instances:heartbeat']).toBeUndefined();
    expect(Object.keys(PERMISSION_DOCS).sort()).toEqual([...PERMISSIONS].sort());
  });
});
