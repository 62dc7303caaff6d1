import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { type ActingContext, CatalogueService, type NetworkRecord, type NetworkUsage } from '@norm/core';
import { IdParams } from '../hosts/hosts.dto';
import { Acting, RequirePermission } from '../identity/permission.decorator';
import { CreateNetworkDto } from './networks.dto';

@ApiTags('inventory')
@Controller('v1/networks')
export class NetworksController {
  constructor(@Inject(CatalogueService) private readonly catalogue: CatalogueService) {}

  @Post()
  @RequirePermission('networks:write')
  create(@Acting() ctx: ActingContext, @Body() body: CreateNetworkDto): Promise<NetworkRecord> {
    return this.catalogue.createNetwork(ctx, body);
  }

  @Get()
  @RequirePermission('networks:read')
  list(): Promise<NetworkRecord[]> {
    return this.catalogue.listNetworks();
  }

  /** With usage: the range size and how many addresses are allocated. */
  @Get(':id')
  @RequirePermission('networks:read')
  get(@Param() params: IdParams): Promise<NetworkRecord & { usage: NetworkUsage }> {
    return this.catalogue.getNetwork(params.id);
  }

  /** Refused (409) once the network has ever allocated an address. */
  @Delete(':id')
  @HttpCode(204)
  @RequirePermission('networks:write')
  remove(@Acting() ctx: ActingContext, @Param() params: IdParams): Promise<void> {
    return this.catalogue.deleteNetwork(ctx, params.id);
  }
}
