import { Controller, Get, Inject, Query } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { type AuditPage, type AuditReader, type AuditVerification } from '@norm/core';
import { AUDIT_READER } from '../identity/identity.tokens';
import { RequirePermission } from '../identity/permission.decorator';
import { AuditQueryDto } from './audit.dto';

@ApiTags('audit')
@Controller('v1/audit')
export class AuditController {
  constructor(@Inject(AUDIT_READER) private readonly audit: AuditReader) {}

  /** Newest first; pass `nextCursor` back as `cursor` for the next page. */
  @Get()
  @RequirePermission('audit:read')
  list(@Query() query: AuditQueryDto): Promise<AuditPage> {
    return this.audit.list({
      ...query,
      from: query.from === undefined ? undefined : new Date(query.from),
      to: query.to === undefined ? undefined : new Date(query.to),
    });
  }

  /**
   * Walks the whole chain and compares its end with the recorded head; `firstBroken` names the
   * edited row, the row after a deleted one, or the head when the newest rows were deleted.
   */
  @Get('verify')
  @RequirePermission('audit:verify')
  verify(): Promise<AuditVerification> {
    return this.audit.verify();
  }
}
