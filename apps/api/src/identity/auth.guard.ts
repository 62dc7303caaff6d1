import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  authorize,
  fastTokenKey,
  Forbidden,
  isDomainError,
  type Logger,
  type Permission,
  RateLimited,
  type RequestGate,
  TokenAuthenticator,
  Unauthenticated,
} from '@norm/core';
import { NORM_LOGGER } from '@norm/platform';
import { type FastifyReply } from 'fastify';
import { type AuthenticatedRequest, PERMISSION_KEY, PUBLIC_KEY } from './permission.decorator';
import { REQUEST_GATE } from './identity.tokens';

const BEARER = /^Bearer ([^\s]+)$/i;

interface RouteDeclaration {
  isPublic: boolean;
  permission: Permission | undefined;
}

/**
 * The global guard: deny by default. Per request, in order:
 *   1. `@Public()` routes pass untouched;
 *   2. a route without `@RequirePermission` is refused (and fails the boot, see RoutePermissionCheck);
 *   3. one Redis script run, shared with concurrent requests (RedisRequestGate): rate limits
 *      (IP, token, failed auths) + the revocation epoch;
 *   4. the token, from the in-process cache or Postgres + scrypt on a miss;
 *   5. the route's permission against the subject's grants.
 * Object-level checks happen later, in the domain, once the object is loaded.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly authenticator: TokenAuthenticator,
    @Inject(REQUEST_GATE) private readonly gate: RequestGate,
    @Inject(NORM_LOGGER) private readonly log: Logger,
  ) {}

  /**
   * What each route declares, read from its decorators once: the metadata never changes after
   * boot, and two reflector walks per request were a visible share of bench/http-floor.
   */
  private readonly declared = new WeakMap<object, WeakMap<object, RouteDeclaration>>();

  private declaration(context: ExecutionContext): RouteDeclaration {
    const handler = context.getHandler();
    const cls = context.getClass();
    let byHandler = this.declared.get(cls);
    if (!byHandler) this.declared.set(cls, (byHandler = new WeakMap()));
    let found = byHandler.get(handler);
    if (!found) {
      const targets = [handler, cls];
      found = {
        isPublic: this.reflector.getAllAndOverride<boolean | undefined>(PUBLIC_KEY, targets) === true,
        permission: this.reflector.getAllAndOverride<Permission | undefined>(PERMISSION_KEY, targets),
      };
      byHandler.set(handler, found);
    }
    return found;
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const { isPublic, permission } = this.declaration(context);
    if (isPublic) return true;
    if (!permission) throw new Forbidden('(no permission declared for this route)');

    const http = context.switchToHttp();
    const request = http.getRequest<AuthenticatedRequest>();
    const reply = http.getResponse<FastifyReply>();
    const token = BEARER.exec(request.headers.authorization ?? '')?.[1];
    const key = token === undefined ? undefined : fastTokenKey(token);

    const decision = await this.gate.admit(request.ip, key);
    if (decision.refused) {
      reply.header('Retry-After', String(decision.refused.retryAfterS));
      throw new RateLimited(decision.refused.bucket, decision.refused.retryAfterS);
    }
    if (token === undefined || key === undefined) {
      await this.gate.recordAuthFailure(request.ip);
      throw new Unauthenticated('no bearer token');
    }
    try {
      request.auth = await this.authenticator.authenticate(token, key, decision.epoch);
    } catch (error) {
      if (isDomainError(error) && error.code === 'Unauthenticated') {
        await this.gate.recordAuthFailure(request.ip);
        // Never the token: the prefix-free reason and where it came from are enough to investigate.
        this.log.warn('authentication failed', {
          reason: error.details.reason,
          ip: request.ip,
          requestId: request.id,
        });
      }
      throw error;
    }
    authorize(request.auth, permission);
    return true;
  }
}
