import { createHash } from 'node:crypto';
import { utils } from 'ssh2';

/** An ed25519 key pair in OpenSSH formats, as `ssh-keygen -t ed25519` would write it. */
export interface SimKeyPair {
  /** `-----BEGIN OPENSSH PRIVATE KEY-----` text. */
  privateKey: string;
  /** `ssh-ed25519 AAAA... comment` (authorized_keys / .pub line). */
  publicKey: string;
  /** `SHA256:<base64 without padding>` of the public key blob. */
  fingerprint: string;
}

/**
 * ssh2 1.17's generateKeyPairSync('ed25519') drops a leading zero byte of the public key
 * about once in 400 keys (a 31-byte key that ssh2 itself and sshd then reject as
 * malformed), so keys are regenerated until both halves parse and agree.
 */
export function generateEd25519(comment = 'norm-sim'): SimKeyPair {
  for (let attempt = 0; attempt < 100; attempt++) {
    const pair = utils.generateKeyPairSync('ed25519', { comment });
    const pub = utils.parseKey(pair.public);
    const priv = utils.parseKey(pair.private);
    if (pub instanceof Error || priv instanceof Error) continue;
    if (!pub.getPublicSSH().equals(priv.getPublicSSH())) continue;
    return { privateKey: pair.private, publicKey: pair.public, fingerprint: sshFingerprint(pair.public) };
  }
  throw new Error('could not generate a well-formed ed25519 key');
}

/** The public key blob (wire format) of an OpenSSH public key line or a key blob itself. */
export function publicKeyBlob(publicKey: string | Buffer): Buffer {
  if (Buffer.isBuffer(publicKey)) return publicKey;
  const parsed = utils.parseKey(publicKey);
  if (parsed instanceof Error) throw parsed;
  return parsed.getPublicSSH();
}

/**
 * Fingerprint exactly as `ssh-keygen -lf` prints it: SHA256 of the key blob, base64 without
 * `=` padding. Written here independently of libs/xen's own helper so the two can check
 * each other.
 */
export function sshFingerprint(publicKey: string | Buffer): string {
  const digest = createHash('sha256').update(publicKeyBlob(publicKey)).digest('base64');
  return `SHA256:${digest.replace(/=+$/, '')}`;
}
