import { Controller, Get, Inject } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { type DriftReport, HostService } from '@norm/core';
import { RequirePermission } from '../identity/permission.decorator';

@ApiTags('inventory')
@Controller('v1/drift')
export class DriftController {
  constructor(@Inject(HostService) private readonly hosts: HostService) {}

  /** Fleet-wide drift: orphan domains, vanished instances, wrong-host domains. Report-only. */
  @Get()
  @RequirePermission('hosts:read')
  fleet(): Promise<DriftReport> {
    return this.hosts.drift();
  }
}
