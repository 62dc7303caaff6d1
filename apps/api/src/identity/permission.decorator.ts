import { applyDecorators, createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth, ApiExtension, ApiForbiddenResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { type ActingContext, type AuthSubject, type Permission } from '@norm/core';
import { type FastifyRequest } from 'fastify';
import { BEARER_SCHEME } from '../openapi/openapi';

export const PERMISSION_KEY = 'norm:permission';
export const PUBLIC_KEY = 'norm:public';

/**
 * The one permission a route needs (see ROLE_GRANTS in libs/core/src/identity/permissions.ts).
 * Every route declares either this or `@Public()`; a route with neither fails the boot and,
 * should it ever be reached, is refused by the guard. It also documents the route in OpenAPI:
 * the bearer scheme and an `x-norm-permission` extension.
 *
 *   @Get(':id')
 *   @RequirePermission('vm-requests:read')
 *   get(@Acting() ctx: ActingContext, @Param('id') id: string) { return this.requests.get(ctx, id); }
 *
 * With an `own`-scoped grant the domain method must still call `authorizeObject` after
 * loading the object, so another owner's object answers 404.
 */
export function RequirePermission(permission: Permission): MethodDecorator & ClassDecorator {
  return applyDecorators(
    SetMetadata(PERMISSION_KEY, permission),
    ApiBearerAuth(BEARER_SCHEME),
    ApiExtension('x-norm-permission', permission),
    ApiUnauthorizedResponse({ description: 'no valid bearer token' }),
    ApiForbiddenResponse({ description: `requires the \`${permission}\` permission` }),
  );
}

/** Served without a token (health probes). Rate limits do not apply either. */
export function Public(): MethodDecorator & ClassDecorator {
  return applyDecorators(SetMetadata(PUBLIC_KEY, true), ApiExtension('x-norm-permission', 'public'));
}

export type AuthenticatedRequest = FastifyRequest & { auth?: AuthSubject };

/** The authenticated subject and the request id, as the domain's audit needs them. */
export const Acting = createParamDecorator((_: unknown, ctx: ExecutionContext): ActingContext => {
  const request = ctx.switchToHttp().getRequest<AuthenticatedRequest>();
  if (!request.auth) {
    // Only reachable on a @Public() route, which must not ask for an acting subject.
    throw new Error('no authenticated subject on this request');
  }
  return { subject: request.auth, requestId: String(request.id) };
});
