export { type BackoffPolicy, backoffDelay } from './backoff';
export { fingerprintMatches, hostKeyFingerprint } from './host-key-fingerprint';
export { readHostKeyFingerprint } from './read-host-key';
export {
  type ConnectionStats,
  type ExecOptions,
  type RemoteResult,
  type RemoteShell,
  SshHostConnection,
  type UploadOptions,
} from './ssh-host-connection';
export { SSH_DEFAULTS, sshOptions, sshOptionsFromConfig, type SshTransportOptions } from './ssh-options';
export { SshPool } from './ssh-pool';
export {
  defaultSshKeyPath,
  loadSshPrivateKey,
  type PrivateKeySource,
  sshKeyConfigured,
} from './ssh-private-key';
