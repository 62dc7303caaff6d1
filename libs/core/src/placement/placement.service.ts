import { DomainError, NotFound } from '../errors';
import { type InventoryTx, type InventoryUnitOfWork } from '../inventory/catalogue.port';
import {
  type AntiAffinityMode,
  type PlacementOptions,
  type PlacementPlan,
  type PlacementRequest,
  planPlacement,
  requirePlacement,
} from './placement';
import { placementHosts } from './placement-hosts';

export interface PlacementServiceOptions extends PlacementOptions {
  /** How a request's anti-affinity group is enforced when it does not say. */
  antiAffinityMode: AntiAffinityMode;
}

export interface PlacementPreviewInput {
  memoryMb: number;
  vcpus: number;
  diskGb: number;
  group?: string | undefined;
  antiAffinity?: AntiAffinityMode | undefined;
  strategy?: PlacementOptions['strategy'] | undefined;
}

/** Reads capacity (with what is promised to requests in flight) and applies `planPlacement`. */
export class PlacementService {
  constructor(
    private readonly uow: InventoryUnitOfWork,
    private readonly options: PlacementServiceOptions,
  ) {}

  /** Which host would be chosen and why the others would not; reserves nothing. */
  preview(input: PlacementPreviewInput): Promise<PlacementPlan> {
    return this.uow.run((tx) =>
      this.plan(
        tx,
        this.request(input.memoryMb, input.vcpus, input.diskGb, input.group ?? null, input.antiAffinity),
        {
          ...this.options,
          strategy: input.strategy ?? this.options.strategy,
        },
      ),
    );
  }

  /**
   * Chooses a host for an approved request and records it, which promises its capacity. Under
   * the placement lock, so concurrent requests see each other's promises. Idempotent: a request
   * that already has a host keeps it.
   */
  place(requestId: string): Promise<{ hostId: string; plan: PlacementPlan | null }> {
    return this.uow.run(async (tx) => {
      await tx.lockPlacement();
      const row = await tx.placementRequest(requestId);
      if (!row) throw new NotFound('vm-request', requestId);
      if (row.hostId !== null) return { hostId: row.hostId, plan: null };
      if (row.state !== 'approved')
        throw new DomainError('InvalidTransition', 'only an approved request can be placed', {
          requestId,
          state: row.state,
        });
      const plan = await this.plan(
        tx,
        this.request(row.memoryMb, row.vcpus, row.diskGb, row.antiAffinityGroup, undefined),
        this.options,
      );
      const chosen = requirePlacement(plan);
      await tx.assignHost(requestId, chosen.hostId);
      return { hostId: chosen.hostId, plan };
    });
  }

  private request(
    memoryMb: number,
    vcpus: number,
    diskGb: number,
    group: string | null,
    mode: AntiAffinityMode | undefined,
  ): PlacementRequest {
    return {
      memoryMb,
      vcpus,
      diskGb,
      antiAffinity: group === null ? undefined : { group, mode: mode ?? this.options.antiAffinityMode },
    };
  }

  private async plan(
    tx: InventoryTx,
    request: PlacementRequest,
    options: PlacementOptions,
  ): Promise<PlacementPlan> {
    const [hosts, reservations, placed] = await Promise.all([
      tx.hosts.list(),
      tx.placement.reservations(),
      tx.placement.placedInstances(),
    ]);
    return planPlacement(request, placementHosts(hosts, reservations, placed), options);
  }
}
