import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type DomainError } from '@norm/core';
import { usableKeyPair } from './mini-ssh-server.spec-helper';
import { loadSshPrivateKey, sshKeyConfigured } from './ssh-private-key';

describe('loadSshPrivateKey', () => {
  const key = usableKeyPair().private;
  const dir = mkdtempSync(join(tmpdir(), 'norm-key-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prefers the key file, then inline text (with escaped newlines), then the demo default', () => {
    writeFileSync(join(dir, 'id'), key);
    expect(loadSshPrivateKey({ keyPath: join(dir, 'id'), privateKey: 'ignored' }).toString()).toBe(key);
    expect(loadSshPrivateKey({ privateKey: key.replace(/\n/g, '\\n') }).toString()).toBe(key);
    mkdirSync(join(dir, 'state', 'ssh'), { recursive: true });
    writeFileSync(join(dir, 'state', 'ssh', 'id_ed25519'), key);
    expect(loadSshPrivateKey({ stateDir: join(dir, 'state') }).toString()).toBe(key);
  });

  it('counts as configured only with a setting or the default file (processes start without Xen otherwise)', () => {
    expect(sshKeyConfigured({ stateDir: join(dir, 'nowhere') })).toBe(false);
    expect(sshKeyConfigured({ stateDir: join(dir, 'nowhere'), keyPath: join(dir, 'missing') })).toBe(true);
    expect(sshKeyConfigured({ stateDir: join(dir, 'nowhere'), privateKey: 'x' })).toBe(true);
    mkdirSync(join(dir, 'keyed', 'ssh'), { recursive: true });
    writeFileSync(join(dir, 'keyed', 'ssh', 'id_ed25519'), key);
    expect(sshKeyConfigured({ stateDir: join(dir, 'keyed') })).toBe(true);
  });

  it('fails at boot, naming the setting, for a missing or unusable key', () => {
    const settingOf = (load: () => unknown): unknown => {
      try {
        load();
      } catch (err) {
        const e = err as DomainError;
        return [e.code, e.details.setting];
      }
      return undefined;
    };
    expect(settingOf(() => loadSshPrivateKey({ keyPath: join(dir, 'missing') }))).toEqual([
      'ConfigInvalid',
      'NORM_SSH_KEY_PATH',
    ]);
    expect(settingOf(() => loadSshPrivateKey({ privateKey: 'not a key' }))).toEqual([
      'ConfigInvalid',
      'NORM_SSH_PRIVATE_KEY',
    ]);
  });
});
