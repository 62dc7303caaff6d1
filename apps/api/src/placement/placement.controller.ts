import { Controller, Get, Inject, Query } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { type PlacementPlan, PlacementService } from '@norm/core';
import { RequirePermission } from '../identity/permission.decorator';
import { PlacementPreviewQuery } from './placement.dto';

@ApiTags('inventory')
@Controller('v1/placement')
export class PlacementController {
  constructor(@Inject(PlacementService) private readonly placement: PlacementService) {}

  /** Which host would take a VM of this size and why the others would not. Reserves nothing. */
  @Get('preview')
  @RequirePermission('placement:read')
  preview(@Query() query: PlacementPreviewQuery): Promise<PlacementPlan> {
    return this.placement.preview(query);
  }
}
