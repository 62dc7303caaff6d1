import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fingerprintMatches, hostKeyFingerprint } from './host-key-fingerprint';
import { usableKeyPair } from './mini-ssh-server.spec-helper';

describe('hostKeyFingerprint', () => {
  it('prints exactly what ssh-keygen -lf prints', () => {
    const pair = usableKeyPair();
    const parsed = pair.parsedPublic;
    const dir = mkdtempSync(join(tmpdir(), 'norm-fp-'));
    let keygen: string | undefined;
    try {
      const file = join(dir, 'key.pub');
      writeFileSync(file, `${pair.public}\n`);
      keygen = execFileSync('ssh-keygen', ['-lf', file], { encoding: 'utf8' }).split(' ')[1];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(hostKeyFingerprint(parsed.getPublicSSH())).toBe(keygen);
  });

  it('matches only the same SHA256 fingerprint, forgiving trailing padding', () => {
    const fp = 'SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU';
    expect(fingerprintMatches(fp, fp)).toBe(true);
    expect(fingerprintMatches(`${fp}=`, fp)).toBe(true);
    expect(fingerprintMatches(fp.replace('47', '48'), fp)).toBe(false);
    expect(fingerprintMatches('MD5:aa:bb', 'MD5:aa:bb')).toBe(false);
    expect(fingerprintMatches('', fp)).toBe(false);
  });
});
