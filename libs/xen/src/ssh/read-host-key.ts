import { connect as netConnect } from 'node:net';
import { Client } from 'ssh2';
import { hostKeyFingerprint } from './host-key-fingerprint';
import { hostUnreachable } from './transport-errors';

/**
 * Trust on first use: connects, captures the host key offered during key exchange,
 * and aborts the handshake at that point (the verifier refuses), so nothing is
 * authenticated or run. The operator compares the result with `ssh-keygen -lf` on the
 * host before it is pinned.
 */
export function readHostKeyFingerprint(address: string, port: number, timeoutMs = 10_000): Promise<string> {
  const label = `${address}:${port}`;
  return new Promise<string>((resolve, reject) => {
    const sock = netConnect({ host: address, port });
    sock.setNoDelay(true);
    const client = new Client();
    let fingerprint: string | undefined;
    let settled = false;
    const settle = (action: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      client.destroy();
      sock.destroy();
      action();
    };
    const guard = setTimeout(
      () => settle(() => reject(hostUnreachable(label, 'connect timeout', { timeoutMs }))),
      timeoutMs,
    );
    const onEnd = (err?: Error & { code?: string }): void => {
      if (fingerprint !== undefined) settle(() => resolve(fingerprint as string));
      else
        settle(() =>
          reject(hostUnreachable(label, err?.code ?? err?.message ?? 'closed before key exchange', {}, err)),
        );
    };
    client.on('error', onEnd);
    client.on('close', () => onEnd());
    try {
      client.connect({
        sock,
        // Never used: the handshake is abandoned before authentication.
        username: 'norm-host-key-probe',
        readyTimeout: timeoutMs,
        hostVerifier: (key: Buffer): boolean => {
          fingerprint = hostKeyFingerprint(key);
          // Resolve now rather than waiting for the disconnect to be processed.
          settle(() => resolve(fingerprint as string));
          return false;
        },
      });
    } catch (err) {
      settle(() => reject(hostUnreachable(label, 'ssh client setup failed', {}, err)));
    }
  });
}
