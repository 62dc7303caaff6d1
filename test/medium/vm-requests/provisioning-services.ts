import {
  handleInstanceAction,
  handleVmProvision,
  heartbeatOptionsOf,
  HostLimiter,
  InstanceService,
  loadConfig,
  parseToken,
  QuotaStep,
  type RevocationNotifier,
  silentLogger,
  systemClock,
  verifySecret,
  VmRequestService,
  type XenHostFactory,
} from '@norm/core';
import { OperationRepository, PgVmRequestUnitOfWork } from '@norm/inventory';
import { type DataSource } from 'typeorm';

/** Guest bootstrap settings the provisioning medium tests render into configs and seeds. */
export const TEST_BOOTSTRAP = { apiUrl: 'http://10.0.2.100:8080', intervalS: 5 };

/**
 * The request service and the provision and instance-action handlers, wired as the worker
 * wires them, on a test database and a (simulated) Xen host factory.
 */
export function provisioningServices(deps: {
  dataSource: DataSource;
  xen: XenHostFactory;
  revocations: RevocationNotifier;
  /** Provision failures in a row that take a host out of placement. */
  blockHostAfter: number;
}) {
  const { dataSource, xen, revocations } = deps;
  const uow = new PgVmRequestUnitOfWork(dataSource);
  const requests = new VmRequestService(uow, [new QuotaStep({ perPrincipal: {}, groups: {} })], systemClock, {
    bounds: { maxVcpus: 16, minMemoryMb: 128, maxMemoryMb: 65_536, maxDiskGb: 500 },
    placement: { strategy: 'spread', dom0ReserveMb: 1024, vcpuOvercommitRatio: 4, antiAffinityMode: 'hard' },
  });
  const limiter = new HostLimiter(2, 16);
  const provision = handleVmProvision({
    uow,
    requests,
    xen,
    limiter,
    clock: systemClock,
    log: silentLogger,
    options: { maxAttempts: 3, blockHostAfter: deps.blockHostAfter },
    bootstrap: TEST_BOOTSTRAP,
    revocations,
  });
  const operations = new OperationRepository(dataSource);
  const instances = new InstanceService(uow, operations, systemClock, {
    operationDeadlineMs: 60_000,
    heartbeat: heartbeatOptionsOf(loadConfig({})),
  });
  const action = handleInstanceAction({
    uow,
    operations,
    xen,
    limiter,
    clock: systemClock,
    log: silentLogger,
    maxAttempts: 3,
    shutdownTimeoutMs: 2_000,
    revocations,
  });
  return { uow, requests, provision, instances, action };
}

/** Whether Norm accepts this token for the instance: one live row with its prefix whose hash matches. */
export async function tokenAccepted(
  dataSource: DataSource,
  instanceId: string,
  token: string,
): Promise<boolean> {
  const parsed = parseToken(token);
  if (!parsed) return false;
  const rows: Array<{ secret_hash: string }> = await dataSource.query(
    `SELECT "secret_hash" FROM "api_tokens" WHERE "prefix" = $1 AND "instance_id" = $2 AND "revoked_at" IS NULL`,
    [parsed.prefix, instanceId],
  );
  return rows.length === 1 && (await verifySecret(parsed.secret, rows[0]!.secret_hash));
}
