import { Controller, Get, Inject } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { type ActingContext, IdentityService, type Principal, type TokenView } from '@norm/core';
import { Acting, RequirePermission } from './permission.decorator';

@ApiTags('identity')
@Controller('v1/tokens')
export class TokensController {
  constructor(@Inject(IdentityService) private readonly identity: IdentityService) {}

  /** Who am I, and which token am I using (never its secret). */
  @Get('self')
  @RequirePermission('tokens:self')
  self(@Acting() ctx: ActingContext): Promise<{ principal: Principal | null; token: TokenView }> {
    return this.identity.self(ctx.subject);
  }
}
