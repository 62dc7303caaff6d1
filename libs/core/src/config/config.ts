import { z } from 'zod';
import { DomainError } from '../errors';
import { parseDuration } from './duration';
import { parseGroupQuotas, parseQuotaLimits } from '../vm-requests/approval-pipeline';
import { parseDeregistrationTargets } from '../deregistration/deregistration-targets';
import { DEFAULT_HEARTBEAT_TIMEOUT_BOUNDS } from '../lifecycle/heartbeat';

/**
 * Every setting Norm reads, with its default and the reason for that default. The README's
 * settings table is checked against this list by a unit test, so the two cannot drift.
 */
export interface SettingDoc {
  env: string;
  default: string | undefined;
  why: string;
}

const duration = z.string().transform((text, ctx) => {
  try {
    return parseDuration(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const port = z.coerce
  .number({ error: 'must be a port number (1-65535)' })
  .int('must be a port number (1-65535)')
  .min(1, 'must be a port number (1-65535)')
  .max(65535, 'must be a port number (1-65535)');
const positiveInt = z.coerce
  .number({ error: 'must be a whole number' })
  .int('must be a whole number')
  .min(1, 'must be at least 1');
/** A share such as 0.5; 0 would trip on nothing at all and 1 never, so both ends are refused. */
const fraction = z.coerce
  .number({ error: 'must be a fraction between 0 and 1, e.g. 0.5' })
  .gt(0, 'must be a fraction between 0 and 1, e.g. 0.5')
  .lt(1, 'must be a fraction between 0 and 1, e.g. 0.5');
/** Parses with a domain parser and turns its error into a zod issue, so boot lists every bad variable. */
const parsed = <T>(parse: (text: string) => T) =>
  z.string().transform((text, ctx) => {
    try {
      return parse(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });
const url = (protocols: string[]) =>
  z.string().refine(
    (text) => {
      try {
        return protocols.includes(new URL(text).protocol);
      } catch {
        return false;
      }
    },
    `must be a URL starting with ${protocols.join(' or ')}//`,
  );

interface Setting<T extends z.ZodType> {
  env: string;
  schema: T;
  default?: string;
  why: string;
}

function setting<T extends z.ZodType>(
  env: string,
  schema: T,
  defaultValue: string | undefined,
  why: string,
): Setting<T> {
  return defaultValue === undefined ? { env, schema, why } : { env, schema, default: defaultValue, why };
}

const SETTINGS = {
  databaseUrl: setting(
    'DATABASE_URL',
    url(['postgres:', 'postgresql:']),
    'postgres://postgres@127.0.0.1:5432/norm',
    'The local Postgres with trust auth that scripts/services starts or finds; production sets its own.',
  ),
  redisUrl: setting(
    'REDIS_URL',
    url(['redis:', 'rediss:']),
    'redis://127.0.0.1:6379/0',
    'The local Redis that scripts/services starts or finds. Redis only carries queues and caches; Postgres holds state.',
  ),
  redisPrefix: setting(
    'NORM_REDIS_PREFIX',
    z.string().regex(/^[a-zA-Z0-9_:-]{1,64}$/, 'letters, digits, _ : - only'),
    'norm',
    'Namespaces every Redis key, so several Norm installs (or test runs) can share one Redis.',
  ),
  apiHost: setting(
    'NORM_API_HOST',
    z.string().min(1),
    '127.0.0.1',
    'Loopback by default: expose the API deliberately, behind TLS.',
  ),
  apiPort: setting(
    'NORM_API_PORT',
    port,
    '8080',
    'The port the lab guests reach through QEMU guestfwd; any free port works.',
  ),
  logLevel: setting(
    'NORM_LOG_LEVEL',
    z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
    'info',
    'info records every state change without per-request debug noise.',
  ),
  stateDir: setting(
    'NORM_STATE_DIR',
    z.string().min(1),
    '.norm',
    'Project-local state (bootstrap admin token, local services) stays out of the source tree proper.',
  ),
  workerConcurrency: setting(
    'NORM_WORKER_CONCURRENCY',
    positiveInt.max(256),
    '16',
    'Jobs mostly wait on SSH; 16 overlaps that waiting without flooding hosts (per-host caps still apply).',
  ),
  shutdownGraceMs: setting(
    'NORM_SHUTDOWN_GRACE',
    duration,
    '30s',
    "How long a stopping worker lets running jobs finish. Longer than a typical xl create, shorter than systemd's 90s kill.",
  ),
  outboxPollMs: setting(
    'NORM_OUTBOX_POLL_INTERVAL',
    duration,
    '1s',
    'The relay wakes on Postgres NOTIFY at once; polling is only the safety net for a missed notification.',
  ),
  jobLockMs: setting(
    'NORM_JOB_LOCK',
    duration,
    '30s',
    'A job whose worker died becomes retryable after this lock expires (BullMQ default); shorter means faster recovery but more lock renewals.',
  ),
  sshKeyPath: setting(
    'NORM_SSH_KEY_PATH',
    z.string().min(1).optional(),
    undefined,
    'Private key used to reach Xen hosts. Unset: NORM_SSH_PRIVATE_KEY, else .norm/ssh/id_ed25519 (the demo creates it).',
  ),
  sshPrivateKey: setting(
    'NORM_SSH_PRIVATE_KEY',
    z.string().min(1).optional(),
    undefined,
    'The same key inline (PEM/OpenSSH text), for deployments that inject secrets through the environment.',
  ),
  sshConnectTimeoutMs: setting(
    'NORM_SSH_CONNECT_TIMEOUT',
    duration,
    '10s',
    'A host that cannot finish a handshake in 10s is treated as unreachable.',
  ),
  sshCommandTimeoutMs: setting(
    'NORM_SSH_COMMAND_TIMEOUT',
    duration,
    '120s',
    'Real `xl create` with disk and vif took up to 16s emulated; 120s covers a loaded host without letting a hung one hold a job forever.',
  ),
  sshMaxChannels: setting(
    'NORM_SSH_MAX_CHANNELS',
    positiveInt.max(64),
    '8',
    "Below OpenSSH's default MaxSessions (10), leaving room for an operator's own sessions on the same connection.",
  ),
  sshKeepaliveMs: setting(
    'NORM_SSH_KEEPALIVE_INTERVAL',
    duration,
    '15s',
    'Detects a dead TCP connection within ~45s (3 missed keepalives).',
  ),
  xenConfigDir: setting(
    'NORM_XEN_CONFIG_DIR',
    z.string().regex(/^\/[A-Za-z0-9._/-]+$/, 'must be an absolute path of safe characters'),
    '/var/lib/norm/domains',
    'The Norm-owned directory on each host where xl.cfg files are uploaded (created by ansible/playbooks/xen-host.yml).',
  ),
  hostSyncIntervalMs: setting(
    'NORM_HOST_SYNC_INTERVAL',
    duration,
    '30s',
    'Inventory freshness vs. SSH load: 30s keeps drift reports current without hammering hosts.',
  ),
  hostSyncConcurrency: setting(
    'NORM_HOST_SYNC_CONCURRENCY',
    positiveInt.max(1024),
    '32',
    'Hosts read at once by the sync loop. Each read is 4 short commands on an already-open connection, so 32 covers 200 hosts in a few round trips without a burst of SSH handshakes.',
  ),
  hostUnreachableAfter: setting(
    'NORM_HOST_UNREACHABLE_AFTER',
    positiveInt.max(100),
    '3',
    'Consecutive failed syncs before a host is marked unreachable (and leaves placement): one dropped packet or a busy dom0 must not drain a host, three intervals (~90s) of silence should.',
  ),
  placementStrategy: setting(
    'NORM_PLACEMENT_STRATEGY',
    z.enum(['spread', 'pack']),
    'spread',
    'Spread puts each VM on the host with the most free memory, so one host failing takes the fewest VMs down; pack (best fit) keeps hosts free for large VMs.',
  ),
  dom0ReserveMb: setting(
    'NORM_DOM0_RESERVE_MB',
    z.coerce
      .number({ error: 'must be a whole number of MiB' })
      .int('must be a whole number of MiB')
      .min(0, 'must not be negative'),
    '1024',
    "Memory placement leaves free on every host for dom0 and Xen's per-domain overhead; 1 GiB covers a CentOS dom0's page cache growth and a few dozen domains' shadow memory.",
  ),
  vcpuOvercommitRatio: setting(
    'NORM_VCPU_OVERCOMMIT',
    z.coerce
      .number({ error: 'must be a number' })
      .min(0.1, 'must be at least 0.1')
      .max(64, 'must be at most 64'),
    '4',
    'Guest vCPUs allowed per physical CPU. Most VMs idle; 4:1 is a common general-purpose ratio and keeps CPU steal low. Hosts may override it in their limits.',
  ),
  antiAffinityMode: setting(
    'NORM_ANTI_AFFINITY',
    z.enum(['hard', 'soft']),
    'hard',
    'Hard: a request whose anti-affinity group cannot be honoured fails with a reason instead of silently sharing a host, the safe default for replicated services.',
  ),
  heartbeatTimeoutMs: setting(
    'NORM_HEARTBEAT_TIMEOUT',
    duration,
    '180s',
    "A cattle instance silent for this long becomes a reaping candidate (the brief's default).",
  ),
  heartbeatTimeoutCattleMs: setting(
    'NORM_HEARTBEAT_TIMEOUT_CATTLE',
    duration.optional(),
    undefined,
    'Heartbeat timeout of cattle without one of their own; unset means NORM_HEARTBEAT_TIMEOUT, so one setting still moves both classes.',
  ),
  heartbeatTimeoutPetMs: setting(
    'NORM_HEARTBEAT_TIMEOUT_PET',
    duration.optional(),
    undefined,
    'Heartbeat timeout of pets without one of their own (a silent pet only raises an alert); unset means NORM_HEARTBEAT_TIMEOUT.',
  ),
  heartbeatTimeoutMinMs: setting(
    'NORM_HEARTBEAT_TIMEOUT_MIN',
    duration,
    `${DEFAULT_HEARTBEAT_TIMEOUT_BOUNDS.minS}s`,
    'Shortest timeout a request or an operator may give one instance: below a few beat intervals a single slow beat makes a healthy instance a candidate.',
  ),
  heartbeatTimeoutMaxMs: setting(
    'NORM_HEARTBEAT_TIMEOUT_MAX',
    duration,
    `${DEFAULT_HEARTBEAT_TIMEOUT_BOUNDS.maxS / 3600}h`,
    'Longest per-instance timeout: a dead instance holds its memory, disk and address this long, and a restarted reaper waits this long (its startup grace) before acting on it.',
  ),
  guestApiUrl: setting(
    'NORM_GUEST_API_URL',
    url(['http:', 'https:']).optional(),
    undefined,
    "The API base URL guests reach Norm at (heartbeats), handed to each instance at provisioning; often not NORM_API_HOST's address (NAT, a proxy, the lab's 10.0.2.100:8080). Unset: guests get no heartbeat URL and their agent idles, since Norm cannot guess its address as guests see it.",
  ),
  guestHeartbeatIntervalMs: setting(
    'NORM_GUEST_HEARTBEAT_INTERVAL',
    duration,
    '30s',
    "How often a guest's agent beats (whole seconds): six beats per default NORM_HEARTBEAT_TIMEOUT, so a few lost ones never make a healthy instance look silent.",
  ),
  tokenCacheTtlMs: setting(
    'NORM_TOKEN_CACHE_TTL',
    duration,
    '30s',
    'How long a replica trusts a verified token without re-reading it. Revocation does not wait for this (a Redis epoch invalidates caches at once); it only bounds how stale roles or expiry can be.',
  ),
  tokenDefaultTtlMs: setting(
    'NORM_TOKEN_DEFAULT_TTL',
    duration,
    '90d',
    'Lifetime of an API token created without one: long enough for automation, short enough that a forgotten token dies.',
  ),
  tokenMaxTtlMs: setting(
    'NORM_TOKEN_MAX_TTL',
    duration,
    '365d',
    'No API token lives longer than a year; rotation is part of running Norm.',
  ),
  rateLimitWindowMs: setting(
    'NORM_RATE_LIMIT_WINDOW',
    duration,
    '60s',
    'Fixed window for every rate limit; a minute absorbs bursts (a CI job listing instances) while bounding abuse.',
  ),
  rateLimitPerToken: setting(
    'NORM_RATE_LIMIT_PER_TOKEN',
    positiveInt,
    '1200',
    '20 requests/s sustained per token is far above any human or playbook, and stops one runaway script from starving the rest.',
  ),
  rateLimitPerIp: setting(
    'NORM_RATE_LIMIT_PER_IP',
    positiveInt,
    '2400',
    'Twice the per-token limit: one automation host may legitimately hold a couple of tokens.',
  ),
  authFailureLimit: setting(
    'NORM_AUTH_FAILURE_LIMIT',
    positiveInt,
    '20',
    'Failed authentications per IP per window. Far stricter than the request limits: guessing tokens is the attack, and each failure may cost a scrypt.',
  ),
  approvalSteps: setting(
    'NORM_APPROVAL_STEPS',
    z
      .string()
      .transform((t) =>
        t
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean),
      )
      .pipe(z.array(z.enum(['quota', 'naming'], { error: 'steps are quota and naming' }))),
    'quota,naming',
    'The automatic steps every request passes, in order; with these two a request within quota and the naming policy is approved at once.',
  ),
  approvalPolicy: setting(
    'NORM_APPROVAL_POLICY',
    z.string().min(1).optional(),
    undefined,
    'Path of the checklist file (YAML or JSON, see config/approval-policy.example.yaml). Unset: the NORM_APPROVAL_STEPS steps only, so a fresh install approves what fits quota and naming without inventing teams.',
  ),
  approvalCallbackBaseUrl: setting(
    'NORM_APPROVAL_CALLBACK_BASE_URL',
    url(['http:', 'https:']).optional(),
    undefined,
    'The API base URL webhook steps tell the far side to call back on. Unset: webhooks get no callback URL and must answer at once or know it themselves; Norm cannot guess its public address behind a proxy.',
  ),
  approvalTimerIntervalMs: setting(
    'NORM_APPROVAL_TIMER_INTERVAL',
    duration,
    '15s',
    'How often workers fire due approval timers; step timeouts are hours or days, so seconds of lateness do not matter and the query is one index scan.',
  ),
  quotaPerPrincipal: setting(
    'NORM_QUOTA_PER_PRINCIPAL',
    parsed(parseQuotaLimits),
    'instances=20,vcpus=64,memoryMb=262144',
    'Per requester, counting live instances and requests in flight: room for a team environment, not for a runaway script.',
  ),
  quotaGroups: setting(
    'NORM_QUOTA_GROUPS',
    parsed(parseGroupQuotas),
    '',
    'Per-group quotas (`group:instances=N,vcpus=N,memoryMb=N;…`). None by default: groups are an operator decision.',
  ),
  namePattern: setting(
    'NORM_NAME_PATTERN',
    parsed((t) => new RegExp(t)),
    '^[a-z][a-z0-9-]*$',
    'On top of the RFC 1123 label checked at the edge: names start with a letter, so they never look like an address or a domid.',
  ),
  vmMaxVcpus: setting(
    'NORM_VM_MAX_VCPUS',
    positiveInt.max(512),
    '32',
    'Largest VM one request may ask for; larger ones are rare enough to need an operator.',
  ),
  vmMinMemoryMb: setting(
    'NORM_VM_MIN_MEMORY_MB',
    positiveInt,
    '256',
    'Below 256 MiB a CentOS guest does not boot reliably.',
  ),
  vmMaxMemoryMb: setting(
    'NORM_VM_MAX_MEMORY_MB',
    positiveInt,
    '262144',
    '256 GiB: the largest VM one request may ask for.',
  ),
  vmMaxDiskGb: setting(
    'NORM_VM_MAX_DISK_GB',
    positiveInt,
    '2048',
    'A 2 TiB LVM snapshot is already a storage decision; more needs an operator.',
  ),
  provisionHostConcurrency: setting(
    'NORM_PROVISION_HOST_CONCURRENCY',
    positiveInt.max(64),
    '2',
    'Creates/destroys at once per host across every worker (hosts.limits.provisionConcurrency overrides): xl serialises on the toolstack lock, so 2 keeps one running while the next prepares.',
  ),
  provisionGlobalConcurrency: setting(
    'NORM_PROVISION_GLOBAL_CONCURRENCY',
    positiveInt.max(1024),
    '32',
    'Creates/destroys at once across all hosts and workers (Postgres advisory-lock slots); bounds the SSH channels and connections provisioning holds fleet-wide.',
  ),
  provisionBlockHostAfter: setting(
    'NORM_PROVISION_BLOCK_HOST_AFTER',
    positiveInt.max(100),
    '3',
    "A host failing this many provisions in a row leaves placement until an operator clears it (as Nova does): one failure may be the request's, three in a row are the host's.",
  ),
  provisionResumeAfterMs: setting(
    'NORM_PROVISION_RESUME_AFTER',
    duration,
    '5m',
    "A request untouched this long in approved/provisioning has lost its job (dead worker past BullMQ's retries, Redis restarted empty) and is enqueued again; far above one provision's ~30s so live work is never doubled needlessly.",
  ),
  provisionGiveUpAfterMs: setting(
    'NORM_PROVISION_GIVE_UP_AFTER',
    duration,
    '30m',
    'Past this a request is compensated and failed instead of resumed: a requester waiting half an hour deserves an answer, and the capacity it holds is promised to no one else.',
  ),
  stuckWorkIntervalMs: setting(
    'NORM_STUCK_WORK_INTERVAL',
    duration,
    '30s',
    'How often workers look for stalled requests and overdue operations; cheap indexed queries, and a stall is only acted on minutes after it starts.',
  ),
  testPauseProvisionAt: setting(
    'NORM_TEST_PAUSE_PROVISION_AT',
    z
      .enum(['place', 'begin', 'allocate-ip', 'create-disk', 'create-domain', 'confirm', 'mark-running'])
      .optional(),
    undefined,
    'Test hook for the kill -9 chaos tests: the worker stops before this provisioning step and waits to be killed. Never set in production.',
  ),
  reaperMode: setting(
    'NORM_REAPER_MODE',
    z.enum(['dry-run', 'two-phase', 'direct']),
    'two-phase',
    'Two-phase stops a silent cattle instance first (disk and addresses kept) and destroys it only after a quarantine, so a mistaken reap costs a reboot, not data. dry-run decides and records without acting; direct destroys at once.',
  ),
  reaperIntervalMs: setting(
    'NORM_REAPER_INTERVAL',
    duration,
    '10s',
    'Time between reaper cycles. A cycle reads only overdue instances (an index scan) and one `xl list` per involved host, so 10s adds little to a 180s timeout and costs the hosts almost nothing.',
  ),
  reaperStartupGraceMs: setting(
    'NORM_REAPER_STARTUP_GRACE',
    duration,
    '180s',
    'No reaping this long after a reaper starts leading, and never less than NORM_HEARTBEAT_TIMEOUT (raised to it when set lower): Norm being down is not the instances being dead, and a new leader has not watched the fleet yet.',
  ),
  reaperAliveSilentGraceMs: setting(
    'NORM_REAPER_ALIVE_SILENT_GRACE',
    duration,
    '5m',
    'Extra wait past the deadline for a domain `xl list` still shows running: it may only have lost its network or its agent, which deserves a longer look than a domain that is gone.',
  ),
  reaperQuarantineMs: setting(
    'NORM_REAPER_QUARANTINE',
    duration,
    '15m',
    'Two-phase: how long a shut-down instance keeps its disk and addresses before it is destroyed. Long enough for an operator to notice and a partitioned instance to come back, short enough that a dead one frees its capacity within the hour.',
  ),
  reaperMaxPerCycle: setting(
    'NORM_REAPER_MAX_PER_CYCLE',
    positiveInt.max(1000),
    '5',
    'Shutdowns or destroys per cycle: replacing cattle is routine, a flood of deaths is not, and the oldest silence goes first so the rest waits a cycle.',
  ),
  reaperRateLimit: setting(
    'NORM_REAPER_RATE_LIMIT',
    positiveInt.max(100_000),
    '20',
    'Shutdowns or destroys per NORM_REAPER_RATE_WINDOW across cycles: bounds the damage of any mistake the other brakes miss to 20 instances, then the reaper holds (and audits) the rest.',
  ),
  reaperRateWindowMs: setting(
    'NORM_REAPER_RATE_WINDOW',
    duration,
    '10m',
    'The rolling window of NORM_REAPER_RATE_LIMIT; ten minutes lets an operator see the first actions before the limit refills.',
  ),
  reaperHostShare: setting(
    'NORM_REAPER_HOST_SHARE',
    fraction,
    '0.5',
    'A host with more than this share of its cattle silent at once is frozen and flagged: one silent instance says nothing about its host, half of them going silent together says the host (or its network) is sick.',
  ),
  reaperHostMinSilent: setting(
    'NORM_REAPER_HOST_MIN_SILENT',
    positiveInt,
    '2',
    'The host share only counts from this many silent instances, so a host running one or two cattle is not frozen by a single death.',
  ),
  reaperFleetShare: setting(
    'NORM_REAPER_FLEET_SHARE',
    fraction,
    '0.3',
    'More than this share of all cattle silent opens the fleet breaker and stops all reaping: at that point Norm, the network or the heartbeat path is the likelier culprit than that many instances dying.',
  ),
  reaperFleetMinSilent: setting(
    'NORM_REAPER_FLEET_MIN_SILENT',
    positiveInt,
    '3',
    'The fleet share only counts from this many silent instances, so a small fleet losing one or two does not trip the breaker.',
  ),
  reaperIntakeDrop: setting(
    'NORM_REAPER_INTAKE_DROP',
    fraction,
    '0.5',
    'Heartbeat intake (instances that beat within NORM_REAPER_INTAKE_WINDOW) falling by more than this share against its smoothed baseline opens the breaker: a sharp drop across the fleet is the heartbeat path failing, not instances dying.',
  ),
  reaperIntakeMinBaseline: setting(
    'NORM_REAPER_INTAKE_MIN_BASELINE',
    positiveInt,
    '10',
    'The intake signal only counts once the baseline is this many beating instances; below it, one or two instances more or less would swing the ratio.',
  ),
  reaperIntakeWindowMs: setting(
    'NORM_REAPER_INTAKE_WINDOW',
    duration,
    '60s',
    'Window over which heartbeat intake is counted; a minute holds several beats of every healthy instance, so one late beat does not look like a drop.',
  ),
  deregistrationTargets: setting(
    'NORM_DEREGISTRATION_TARGETS',
    parsed(parseDeregistrationTargets),
    '',
    'Where a decommissioned instance is removed from (`kind:name=spec;…`, kinds webhook, command, ansible, sensu, chef, puppet, spacewalk and dns). None by default: which systems track instances is a site decision.',
  ),
  deregistrationWebhookSecret: setting(
    'NORM_DEREGISTRATION_WEBHOOK_SECRET',
    z.string().min(16, 'must be at least 16 characters').optional(),
    undefined,
    'HMAC key that signs deregistration webhooks; required once a webhook target is configured, never defaulted so no two sites share one.',
  ),
  deregistrationSensuApiKey: setting(
    'NORM_DEREGISTRATION_SENSU_API_KEY',
    z.string().min(1).optional(),
    undefined,
    'Sensu Go API key (`sensuctl api-key grant`) for sensu targets; required once one is configured, never defaulted.',
  ),
  deregistrationChefClient: setting(
    'NORM_DEREGISTRATION_CHEF_CLIENT',
    z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/, 'must be a Chef client name')
      .optional(),
    undefined,
    "The Chef API client Norm signs as (it needs delete on nodes and clients); required once a chef target is configured, never defaulted so the server's audit names who deleted.",
  ),
  deregistrationChefKeyPath: setting(
    'NORM_DEREGISTRATION_CHEF_KEY_PATH',
    z.string().startsWith('/', 'must be an absolute path').optional(),
    undefined,
    "PEM file of that client's RSA private key, read once at boot (a bad key stops the process, not a decommission); a path, so the key is never in the environment or a log.",
  ),
  deregistrationPuppetCertPath: setting(
    'NORM_DEREGISTRATION_PUPPET_CERT_PATH',
    z.string().startsWith('/', 'must be an absolute path').optional(),
    undefined,
    'PEM client certificate for the Puppet CA and PuppetDB (signed by the Puppet CA, with pp_cli_auth for the CA API); required once a puppet target is configured.',
  ),
  deregistrationPuppetKeyPath: setting(
    'NORM_DEREGISTRATION_PUPPET_KEY_PATH',
    z.string().startsWith('/', 'must be an absolute path').optional(),
    undefined,
    'PEM private key of that certificate; checked against it at boot, since a mismatch would fail every handshake.',
  ),
  deregistrationPuppetCaPath: setting(
    'NORM_DEREGISTRATION_PUPPET_CA_PATH',
    z.string().startsWith('/', 'must be an absolute path').optional(),
    undefined,
    "PEM of the Puppet CA; the only CA trusted for the Puppet servers (pinned), as Puppet's own agents do.",
  ),
  deregistrationSpacewalkUser: setting(
    'NORM_DEREGISTRATION_SPACEWALK_USER',
    z.string().min(1).optional(),
    undefined,
    'Spacewalk/Uyuni API user (a system group administrator is enough to delete systems); required once a spacewalk target is configured.',
  ),
  deregistrationSpacewalkPassword: setting(
    'NORM_DEREGISTRATION_SPACEWALK_PASSWORD',
    z.string().min(1).optional(),
    undefined,
    "That user's password; XML-RPC has no other login. Never logged: errors are scrubbed of it and of the session key.",
  ),
  deregistrationDnsTsigKeyName: setting(
    'NORM_DEREGISTRATION_DNS_TSIG_KEY_NAME',
    z
      .string()
      .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/, 'must be a DNS name (the key statement in named.conf)')
      .optional(),
    undefined,
    "Name of the TSIG key (HMAC-SHA256) that signs dns targets' RFC 2136 updates, as in the server's `key` statement; required once a dns target is configured.",
  ),
  deregistrationDnsTsigSecret: setting(
    'NORM_DEREGISTRATION_DNS_TSIG_SECRET',
    z
      .string()
      .refine(
        (t) => /^[A-Za-z0-9+/]+={0,2}$/.test(t) && Buffer.from(t, 'base64').length >= 16,
        'must be base64 of at least 16 bytes (tsig-keygen -a hmac-sha256 prints 32)',
      )
      .optional(),
    undefined,
    "The TSIG key's base64 secret (`tsig-keygen -a hmac-sha256`); never defaulted, logged or audited, so no two sites share one.",
  ),
  deregistrationIntervalMs: setting(
    'NORM_DEREGISTRATION_INTERVAL',
    duration,
    '15s',
    'How often the worker retries due deregistrations; backoff per row (30 s doubling to 30 min) decides what is due, this only bounds the extra wait.',
  ),
  deregistrationTimeoutMs: setting(
    'NORM_DEREGISTRATION_TIMEOUT',
    duration,
    '30s',
    'Per call to one target; a slow target fails and is retried rather than holding the others.',
  ),
  webhookDeliveryIntervalMs: setting(
    'NORM_WEBHOOK_DELIVERY_INTERVAL',
    duration,
    '1s',
    'How often each worker looks for notifications to send: a person waiting on a chat message notices seconds, and the query reads a small partial index.',
  ),
  webhookTimeoutMs: setting(
    'NORM_WEBHOOK_TIMEOUT',
    duration,
    '10s',
    'Per notification call; a receiver slower than this is retried later rather than holding a sender.',
  ),
  webhookMaxAttempts: setting(
    'NORM_WEBHOOK_MAX_ATTEMPTS',
    positiveInt.max(50),
    '12',
    'With backoff from 10 s doubling to 1 h, 12 attempts cover about three and a half hours: a bridge down over lunch still gets its messages; past that the news is stale, the delivery is marked failed and an operator may resend it.',
  ),
  workerMetricsHost: setting(
    'NORM_WORKER_METRICS_HOST',
    z.string().min(1),
    '127.0.0.1',
    "The worker's Prometheus listener has no authentication, so it binds loopback unless the operator opens it deliberately.",
  ),
  workerMetricsPort: setting(
    'NORM_WORKER_METRICS_PORT',
    z.coerce
      .number({ error: 'must be a port number (0-65535)' })
      .int('must be a port number (0-65535)')
      .min(0, 'must be a port number (0-65535)')
      .max(65535, 'must be a port number (0-65535)'),
    '9464',
    'Where Prometheus scrapes the worker (GET /metrics); 0 turns the listener off. 9464 is the port Prometheus exporters in the OpenTelemetry convention use; a second worker on one machine needs its own.',
  ),
} as const;

type Settings = typeof SETTINGS;
export type NormConfig = { readonly [K in keyof Settings]: z.output<Settings[K]['schema']> };

export const SETTING_DOCS: readonly SettingDoc[] = Object.values(SETTINGS).map((s) => ({
  env: s.env,
  default: 'default' in s ? s.default : undefined,
  why: s.why,
}));

export class ConfigInvalid extends DomainError {
  constructor(readonly problems: ReadonlyArray<{ env: string; message: string }>) {
    super(
      'ConfigInvalid',
      `invalid configuration: ${problems.map((p) => `${p.env}: ${p.message}`).join('; ')}`,
      { problems },
    );
  }
}

/**
 * Reads and validates every setting at once. The error lists every bad variable, so an
 * operator fixes the environment in one pass instead of one restart per typo.
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env): NormConfig {
  const problems: Array<{ env: string; message: string }> = [];
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(SETTINGS) as Array<[string, Setting<z.ZodType>]>) {
    const given = env[s.env];
    const raw = given === undefined || given === '' ? s.default : given;
    const result = s.schema.safeParse(raw);
    if (result.success) out[key] = result.data;
    else problems.push({ env: s.env, message: result.error.issues.map((i) => i.message).join(', ') });
  }
  if (problems.length > 0) throw new ConfigInvalid(problems);
  return Object.freeze(out) as NormConfig;
}
