/** What every target is told about the instance leaving; ids and names only, no secrets. */
export interface DeregistrationEvent {
  event: 'instance.decommissioned';
  instanceId: string;
  name: string;
  domainName: string;
  ip: string | null;
  mac: string | null;
  labels: Record<string, string>;
  at: string;
}

/**
 * One config-management target (webhook, command, Ansible, DNS, Sensu, Chef, Puppet, ...).
 * `deregister` must be idempotent: a target that no longer knows the instance answers success,
 * so a retry after a crash (or after the target already forgot it) is never a failure.
 */
export interface Deregistrar {
  /** Stable name, stored on each status row (`webhook:cmdb`, `command:cleanup`). */
  readonly name: string;
  /** Reachability and credentials, for an operator checking the configuration. */
  testConnection(): Promise<{ ok: boolean; detail: string }>;
  deregister(event: DeregistrationEvent): Promise<{ outcome: 'removed' | 'absent' }>;
  /** Secret-free description for status pages. */
  describe(): Record<string, unknown>;
}

// Outbound HTTP and site commands reuse the approval steps' ports (WebhookPoster, CommandRunner).
