import { describe, expect, it } from 'vitest';
import { isDomainError } from '../errors';
import { bootstrapKernelArgs, guestBootstrapFor } from './guest-bootstrap';

const TOKEN = 'norm_0123456789ab_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcdEf';
const ID = '6f1c2a9e-8d4b-4c3a-9e2f-1a2b3c4d5e6f';

describe('guest bootstrap data', () => {
  it('renders the words the agent reads, with the IPAM address and prefix', () => {
    const b = guestBootstrapFor(
      { apiUrl: 'http://10.0.2.100:8080/', intervalS: 10 },
      ID,
      TOKEN,
      { cidr: '10.0.2.0/24', gateway: '10.0.2.2' },
      '10.0.2.40',
    );
    expect(bootstrapKernelArgs(b)).toBe(
      `norm.heartbeat_url=http://10.0.2.100:8080/v1/instances/${ID}/heartbeat norm.token=${TOKEN} ` +
        'norm.interval=10 norm.ip=10.0.2.40/24 norm.gw=10.0.2.2',
    );
  });

  it('gives no URL without NORM_GUEST_API_URL, and no address without an allocation', () => {
    const b = guestBootstrapFor({ intervalS: 30 }, ID, TOKEN, { cidr: '10.0.2.0/24', gateway: null }, null);
    expect(bootstrapKernelArgs(b)).toBe(`norm.token=${TOKEN} norm.interval=30`);
  });

  it('keeps a whole bootstrap well inside the 1023-byte PV command line', () => {
    const b = guestBootstrapFor(
      { apiUrl: 'https://norm-api.guests.example.internal:8443', intervalS: 30 },
      ID,
      TOKEN,
      { cidr: '10.200.100.0/22', gateway: '10.200.100.1' },
      '10.200.103.254',
    );
    expect(Buffer.byteLength(bootstrapKernelArgs(b))).toBeLessThan(300);
  });

  it('refuses a value that would split into another parameter, without echoing it', () => {
    let caught: unknown;
    try {
      bootstrapKernelArgs({ token: 'secret norm.heartbeat_url=http://evil', intervalS: 5 });
    } catch (err) {
      caught = err;
    }
    expect(isDomainError(caught) && caught.code).toBe('ValidationFailed');
    expect(JSON.stringify(caught)).not.toContain('secret');
    expect(String((caught as Error).message)).not.toContain('secret');
  });
});
