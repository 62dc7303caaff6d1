import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AnsibleStaticInventoryDeregistrar, removeHostFromIni } from './ansible-static.deregistrar';
import { type DeregistrationEvent } from './deregistrar.port';
import { parseDeregistrationTargets } from './deregistration-targets';

const INVENTORY = `# site inventory, hand-kept
[web]
web-1 ansible_host=10.0.0.5   # the old one
web-2 ansible_host=10.0.0.6
; semicolon comment
10.0.0.9

[web:vars]
web-1=not-a-host-here

[all:children]
web
`;

const event: DeregistrationEvent = {
  event: 'instance.decommissioned',
  instanceId: 'i-1',
  name: 'web-1',
  domainName: 'norm-web-1',
  ip: '10.0.0.9',
  mac: null,
  labels: {},
  at: '2026-01-01T00:00:00.000Z',
};

describe('removeHostFromIni', () => {
  it('drops only the host lines naming the instance, keeping comments, vars and children', () => {
    const { text, removed } = removeHostFromIni(INVENTORY, ['web-1', 'norm-web-1', '10.0.0.9']);
    expect(removed).toBe(2);
    expect(text).toBe(
      INVENTORY.replace('web-1 ansible_host=10.0.0.5   # the old one\n', '').replace('10.0.0.9\n', ''),
    );
    expect(text).toContain('web-1=not-a-host-here');
    expect(removeHostFromIni(text, ['web-1']).removed).toBe(0);
  });
});

describe('AnsibleStaticInventoryDeregistrar', () => {
  it('rewrites the file atomically (no temp file left) and is idempotent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'norm-ansible-'));
    const path = join(dir, 'hosts');
    writeFileSync(path, INVENTORY);
    const target = new AnsibleStaticInventoryDeregistrar({ name: 'site', path });
    expect(await target.deregister(event)).toEqual({ outcome: 'removed' });
    expect(readFileSync(path, 'utf8')).not.toMatch(/^web-1 /m);
    expect(readFileSync(path, 'utf8')).toContain('# site inventory, hand-kept');
    expect(readdirSync(dir)).toEqual(['hosts']);
    expect(await target.deregister(event)).toEqual({ outcome: 'absent' });
    const missing = new AnsibleStaticInventoryDeregistrar({ name: 'x', path: join(dir, 'nope') });
    expect(await missing.deregister(event)).toEqual({ outcome: 'absent' });
    expect(await target.testConnection()).toEqual({ ok: true, detail: 'readable' });
  });
});

describe('parseDeregistrationTargets', () => {
  it('reads every kind and refuses what it cannot use', () => {
    expect(
      parseDeregistrationTargets(
        'webhook:cmdb=https://cmdb.example/h; command:cleanup=/usr/bin/x --a 1 ;ansible:site=/etc/ansible/hosts',
      ),
    ).toEqual([
      { kind: 'webhook', name: 'cmdb', url: 'https://cmdb.example/h' },
      { kind: 'command', name: 'cleanup', argv: ['/usr/bin/x', '--a', '1'] },
      { kind: 'ansible', name: 'site', path: '/etc/ansible/hosts' },
    ]);
    expect(parseDeregistrationTargets('')).toEqual([]);
    expect(() => parseDeregistrationTargets('webhook:x=ftp://a')).toThrow('http(s)');
    expect(() => parseDeregistrationTargets('command:x=relative')).toThrow('absolute');
    expect(() => parseDeregistrationTargets('salt:x=/a')).toThrow('unknown target kind');
    expect(() => parseDeregistrationTargets('webhook:Bad=https://a')).toThrow('must match');
  });
});
