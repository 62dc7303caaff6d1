import { Controller, Get, Inject } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { type ActingContext, type AnsibleInventory, AnsibleInventoryService } from '@norm/core';
import { Acting, RequirePermission } from '../identity/permission.decorator';

/** The fleet as Ansible dynamic inventory JSON; ansible/inventory/norm is the client. */
@ApiTags('inventory')
@Controller('v1/inventory')
export class AnsibleInventoryController {
  constructor(@Inject(AnsibleInventoryService) private readonly inventory: AnsibleInventoryService) {}

  @Get('ansible')
  @RequirePermission('instances:read')
  ansible(@Acting() ctx: ActingContext): Promise<AnsibleInventory> {
    return this.inventory.build(ctx);
  }
}
