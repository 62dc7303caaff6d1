import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { type ActingContext, CatalogueService, type ImageRecord } from '@norm/core';
import { IdParams } from '../hosts/hosts.dto';
import { Acting, RequirePermission } from '../identity/permission.decorator';
import { CreateImageDto, PatchImageDto } from './images.dto';

@ApiTags('inventory')
@Controller('v1/images')
export class ImagesController {
  constructor(@Inject(CatalogueService) private readonly catalogue: CatalogueService) {}

  @Post()
  @RequirePermission('images:write')
  create(@Acting() ctx: ActingContext, @Body() body: CreateImageDto): Promise<ImageRecord> {
    return this.catalogue.createImage(ctx, body);
  }

  @Get()
  @RequirePermission('images:read')
  list(): Promise<ImageRecord[]> {
    return this.catalogue.listImages();
  }

  @Get(':id')
  @RequirePermission('images:read')
  get(@Param() params: IdParams): Promise<ImageRecord> {
    return this.catalogue.getImage(params.id);
  }

  @Patch(':id')
  @RequirePermission('images:write')
  update(
    @Acting() ctx: ActingContext,
    @Param() params: IdParams,
    @Body() body: PatchImageDto,
  ): Promise<ImageRecord> {
    return this.catalogue.updateImage(ctx, params.id, body);
  }

  @Delete(':id')
  @HttpCode(204)
  @RequirePermission('images:write')
  remove(@Acting() ctx: ActingContext, @Param() params: IdParams): Promise<void> {
    return this.catalogue.deleteImage(ctx, params.id);
  }
}
