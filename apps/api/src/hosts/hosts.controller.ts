import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import {
  type ActingContext,
  type DriftReport,
  HostService,
  type HostRecord,
  type ScannedHostKey,
} from '@norm/core';
import { Acting, RequirePermission } from '../identity/permission.decorator';
import { CreateHostDto, IdParams, MaintenanceDto, PatchHostDto, ScanHostKeyDto } from './hosts.dto';

@ApiTags('inventory')
@Controller('v1/hosts')
export class HostsController {
  constructor(@Inject(HostService) private readonly hosts: HostService) {}

  /** Probes the host (`xl info`, `vgs`) over SSH with the pinned key before storing it. */
  @Post()
  @RequirePermission('hosts:write')
  register(@Acting() ctx: ActingContext, @Body() body: CreateHostDto): Promise<HostRecord> {
    return this.hosts.register(ctx, body);
  }

  /**
   * Reads the SSH host key a host offers, for the operator to confirm and then pin at
   * registration (trust on first use, shown to a person; never stored or trusted by itself).
   */
  @Post('actions/scan-host-key')
  @HttpCode(200)
  @RequirePermission('hosts:write')
  scanHostKey(@Acting() ctx: ActingContext, @Body() body: ScanHostKeyDto): Promise<ScannedHostKey> {
    return this.hosts.scanHostKey(ctx, body);
  }

  @Get()
  @RequirePermission('hosts:read')
  list(): Promise<HostRecord[]> {
    return this.hosts.list();
  }

  @Get(':id')
  @RequirePermission('hosts:read')
  get(@Param() params: IdParams): Promise<HostRecord> {
    return this.hosts.get(params.id);
  }

  @Patch(':id')
  @RequirePermission('hosts:write')
  update(
    @Acting() ctx: ActingContext,
    @Param() params: IdParams,
    @Body() body: PatchHostDto,
  ): Promise<HostRecord> {
    return this.hosts.update(ctx, params.id, body);
  }

  /** Refused (409) while Norm has a live instance or a request in flight there; finished ones are detached. */
  @Delete(':id')
  @HttpCode(204)
  @RequirePermission('hosts:write')
  remove(@Acting() ctx: ActingContext, @Param() params: IdParams): Promise<void> {
    return this.hosts.delete(ctx, params.id);
  }

  /** Takes the host out of placement (or back in); running domains are untouched. */
  @Post(':id/actions/maintenance')
  @HttpCode(200)
  @RequirePermission('maintenance:write')
  maintenance(
    @Acting() ctx: ActingContext,
    @Param() params: IdParams,
    @Body() body: MaintenanceDto,
  ): Promise<HostRecord> {
    return this.hosts.setMaintenance(ctx, params.id, body.enabled);
  }

  /** Report-only: what the last sync saw that Norm does not expect, where and when. */
  @Get(':id/drift')
  @RequirePermission('hosts:read')
  drift(@Param() params: IdParams): Promise<DriftReport> {
    return this.hosts.drift(params.id);
  }
}
