import { type InventoryTx, type InventoryUnitOfWork } from '../inventory/catalogue.port';
import {
  type AntiAffinityMode,
  type PlacementHost,
  type PlacementOptions,
  type PlacementPlan,
  type PlacementRequest,
  planPlacement,
} from './placement';

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

/**
 * The placement preview: reads capacity (with what is promised to requests in flight) and
 * applies `planPlacement`. Placing for real is the provision job's first step
 * (VmRequestService.place), under the placement lock.
 */
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
    return planPlacement(request, await placementInput(tx, request.antiAffinity?.group ?? null), options);
  }
}

/**
 * What placement weighs, as the database has it now: every host with the capacity promised to
 * requests in flight and the members of `group` it holds. The one reader for the preview and
 * for the provision job's placement (VmRequestService.place), so both judge the same numbers.
 */
export function placementInput(
  tx: Pick<InventoryTx, 'placement'>,
  group: string | null,
): Promise<PlacementHost[]> {
  return tx.placement.candidates(group);
}
