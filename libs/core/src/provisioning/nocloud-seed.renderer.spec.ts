import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { isDomainError } from '../errors';
import { guestBootstrapFor } from './guest-bootstrap';
import { renderNoCloudSeed } from './nocloud-seed.renderer';

const TOKEN = 'norm_0123456789ab_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcdEf';
const ID = '6f1c2a9e-8d4b-4c3a-9e2f-1a2b3c4d5e6f';
const MAC = '00:16:3E:12:34:56';
const guest = { instanceId: ID, hostname: 'web-1', mac: MAC };
const full = guestBootstrapFor(
  { apiUrl: 'http://10.0.2.100:8080', intervalS: 15 },
  ID,
  TOKEN,
  { cidr: '10.0.2.0/24', gateway: '10.0.2.2' },
  '10.0.2.40',
);

/** The agent's own reading of its config file (agent/norm-heartbeat): `#` and blank lines skipped, KEY=VALUE. */
function agentReads(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    out[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
  }
  return out;
}

/** The keys agent/norm-heartbeat's config parser has a case for. */
const agentKeys = [
  ...readFileSync(join(__dirname, '..', '..', '..', '..', 'agent', 'norm-heartbeat'), 'utf8').matchAll(
    /^\s+(NORM_[A-Z_]+)\) /gm,
  ),
].map((m) => m[1]);

describe('NoCloud seed content', () => {
  it('names the instance in meta-data', () => {
    expect(parse(renderNoCloudSeed(full, guest).metaData)).toEqual({
      'instance-id': ID,
      'local-hostname': 'web-1',
    });
  });

  it('has cloud-init write the agent config root-only with URL, token and interval', () => {
    const { userData } = renderNoCloudSeed(full, guest);
    // cloud-init only takes user-data starting with this line as cloud-config.
    expect(userData.split('\n')[0]).toBe('#cloud-config');
    const doc = parse(userData) as { write_files: Array<Record<string, string>> };
    expect(doc.write_files).toHaveLength(1);
    const file = doc.write_files[0]!;
    expect(file).toMatchObject({ path: '/etc/norm/agent.conf', owner: 'root:root', permissions: '0600' });
    expect(agentReads(file.content!)).toEqual({
      NORM_HEARTBEAT_URL: `http://10.0.2.100:8080/v1/instances/${ID}/heartbeat`,
      NORM_TOKEN: TOKEN,
      NORM_INTERVAL: '15',
    });
    for (const key of Object.keys(agentReads(file.content!))) expect(agentKeys).toContain(key);
  });

  it('gives the NIC with the allocated MAC its static address and default route', () => {
    const net = parse(renderNoCloudSeed(full, guest).networkConfig!) as Record<string, unknown>;
    expect(net).toEqual({
      version: 2,
      ethernets: {
        eth0: {
          match: { macaddress: '00:16:3e:12:34:56' },
          'set-name': 'eth0',
          addresses: ['10.0.2.40/24'],
          routes: [{ to: '0.0.0.0/0', via: '10.0.2.2' }],
        },
      },
    });
  });

  it('leaves out what Norm does not have: no URL, no gateway, no address', () => {
    const bare = guestBootstrapFor(
      { intervalS: 30 },
      ID,
      TOKEN,
      { cidr: '10.0.2.0/24', gateway: null },
      '10.0.2.41',
    );
    const seed = renderNoCloudSeed(bare, guest);
    const file = (parse(seed.userData) as { write_files: Array<{ content: string }> }).write_files[0]!;
    expect(agentReads(file.content)).toEqual({ NORM_TOKEN: TOKEN, NORM_INTERVAL: '30' });
    expect(parse(seed.networkConfig!)).toMatchObject({
      ethernets: { eth0: { addresses: ['10.0.2.41/24'] } },
    });
    expect(seed.networkConfig).not.toContain('routes');
    const noIp = guestBootstrapFor(
      { intervalS: 30 },
      ID,
      TOKEN,
      { cidr: '10.0.2.0/24', gateway: '10.0.2.2' },
      null,
    );
    expect(renderNoCloudSeed(noIp, guest).networkConfig).toBeUndefined();
    expect(renderNoCloudSeed(full, { ...guest, mac: null }).networkConfig).toBeUndefined();
  });

  it('keeps a hostname YAML would misread a string', () => {
    const hostnameOf = (hostname: string): unknown =>
      (parse(renderNoCloudSeed(full, { ...guest, hostname }).metaData) as Record<string, unknown>)[
        'local-hostname'
      ];
    expect(hostnameOf('yes')).toBe('yes');
    expect(hostnameOf('0123')).toBe('0123');
  });

  it('refuses a value that could add a line or a key, without echoing it', () => {
    let caught: unknown;
    try {
      renderNoCloudSeed({ ...full, token: 'secret\nNORM_HEARTBEAT_URL=http://evil' }, guest);
    } catch (err) {
      caught = err;
    }
    expect(isDomainError(caught) && caught.code).toBe('ValidationFailed');
    expect(isDomainError(caught) && caught.details).toEqual({ field: 'norm.token' });
    expect(String((caught as Error).message)).not.toContain('secret');
  });
});
