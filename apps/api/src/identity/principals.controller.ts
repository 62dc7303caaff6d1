import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { type ActingContext, IdentityService, type Principal, type TokenView } from '@norm/core';
import { CreatePrincipalDto, CreateTokenDto, PrincipalParams, TokenParams } from './identity.dto';
import { Acting, RequirePermission } from './permission.decorator';

@ApiTags('identity')
@Controller('v1/principals')
export class PrincipalsController {
  constructor(@Inject(IdentityService) private readonly identity: IdentityService) {}

  @Post()
  @RequirePermission('principals:write')
  create(@Acting() ctx: ActingContext, @Body() body: CreatePrincipalDto): Promise<Principal> {
    return this.identity.createPrincipal(ctx, body);
  }

  @Get()
  @RequirePermission('principals:read')
  list(@Acting() ctx: ActingContext): Promise<Principal[]> {
    return this.identity.listPrincipals(ctx);
  }

  @Get(':id')
  @RequirePermission('principals:read')
  get(@Acting() ctx: ActingContext, @Param() params: PrincipalParams): Promise<Principal> {
    return this.identity.getPrincipal(ctx, params.id);
  }

  @Delete(':id')
  @HttpCode(204)
  @RequirePermission('principals:write')
  remove(@Acting() ctx: ActingContext, @Param() params: PrincipalParams): Promise<void> {
    return this.identity.deletePrincipal(ctx, params.id);
  }

  /** The secret is in this response and nowhere else, ever. */
  @Post(':id/tokens')
  @RequirePermission('tokens:write')
  async createToken(
    @Acting() ctx: ActingContext,
    @Param() params: PrincipalParams,
    @Body() body: CreateTokenDto,
  ): Promise<TokenView & { token: string }> {
    const issued = await this.identity.createToken(ctx, params.id, {
      name: body.name,
      ...(body.expiresIn === undefined ? {} : { expiresInMs: body.expiresIn }),
    });
    return { ...issued.view, token: issued.token };
  }

  @Get(':id/tokens')
  @RequirePermission('tokens:read')
  listTokens(@Acting() ctx: ActingContext, @Param() params: PrincipalParams): Promise<TokenView[]> {
    return this.identity.listTokens(ctx, params.id);
  }

  @Delete(':id/tokens/:tokenId')
  @HttpCode(204)
  @RequirePermission('tokens:write')
  revokeToken(@Acting() ctx: ActingContext, @Param() params: TokenParams): Promise<void> {
    return this.identity.revokeToken(ctx, params.id, params.tokenId);
  }
}
