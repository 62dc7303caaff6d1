import { createHash } from 'node:crypto';

/**
 * The OpenSSH fingerprint of a host key blob: `SHA256:` + unpadded base64 of its sha256,
 * byte for byte what `ssh-keygen -lf` prints, so operators can compare it by eye.
 */
export function hostKeyFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * Compares a stored fingerprint with a computed one. Only trailing base64 padding is
 * forgiven (some tools print it); the hash algorithm must be SHA256 and nothing else is
 * normalised, because a pinned key that "almost" matches is a different key.
 */
export function fingerprintMatches(pinned: string, actual: string): boolean {
  const normalise = (text: string): string => text.trim().replace(/=+$/, '');
  return pinned.startsWith('SHA256:') && normalise(pinned) === normalise(actual);
}
