import { type AuthSubject, type NormConfig } from '@norm/core';
import { createApiApp } from '../../apps/api/src/api-app';
import { AuthGuard } from '../../apps/api/src/identity/auth.guard';
import { type AuthenticatedRequest } from '../../apps/api/src/identity/permission.decorator';

/**
 * The real API app (createApiApp: logging, pipe, filter, the real guard, Postgres, Redis),
 * built twice: once as is, once with the guard's checks replaced by a fixed subject, so the
 * two differ only by authentication, rate limiting and authorization.
 */
export async function startBenchApp(
  config: NormConfig,
  auth: { enabled: true } | { enabled: false; subject: AuthSubject },
): Promise<{ url: string; close: () => Promise<void> }> {
  // Request logs are part of the product's cost, so they are written, but to nowhere.
  const app = await createApiApp({ config, logDestination: { write: () => undefined } });
  if (!auth.enabled) {
    const guard = app.get(AuthGuard);
    guard.canActivate = (context) => {
      context.switchToHttp().getRequest<AuthenticatedRequest>().auth = auth.subject;
      return Promise.resolve(true);
    };
  }
  await app.listen(0, '127.0.0.1');
  return { url: await app.getUrl(), close: () => app.close() };
}
