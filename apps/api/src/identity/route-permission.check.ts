import { Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { isPermission } from '@norm/core';
import { PATH_METADATA } from '@nestjs/common/constants';
import { PERMISSION_KEY, PUBLIC_KEY } from './permission.decorator';

/**
 * Deny by default, enforced at boot: every route handler must declare `@RequirePermission`
 * with a known permission, or `@Public()`. A forgotten decorator stops the API from
 * starting (the guard would refuse it anyway, but a boot failure is found in CI, not by users).
 */
@Injectable()
export class RoutePermissionCheck implements OnApplicationBootstrap {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
  ) {}

  onApplicationBootstrap(): void {
    const problems = findUndeclaredRoutes(this.discovery, this.scanner, this.reflector);
    if (problems.length > 0) {
      throw new Error(`routes without @RequirePermission or @Public(): ${problems.join(', ')}`);
    }
  }
}

export function findUndeclaredRoutes(
  discovery: DiscoveryService,
  scanner: MetadataScanner,
  reflector: Reflector,
): string[] {
  const problems: string[] = [];
  for (const wrapper of discovery.getControllers()) {
    const instance = wrapper.instance as Record<string, unknown> | undefined;
    const cls = wrapper.metatype as (new (...args: never[]) => unknown) | undefined;
    if (!instance || !cls) continue;
    const proto = Object.getPrototypeOf(instance) as object;
    for (const name of scanner.getAllMethodNames(proto)) {
      const handler = (proto as Record<string, unknown>)[name] as (...args: unknown[]) => unknown;
      // Only route handlers carry a path; helper methods are not routes.
      if (Reflect.getMetadata(PATH_METADATA, handler) === undefined) continue;
      const targets = [handler, cls];
      if (reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) continue;
      const permission = reflector.getAllAndOverride<string | undefined>(PERMISSION_KEY, targets);
      if (!permission || !isPermission(permission)) problems.push(`${cls.name}.${name}`);
    }
  }
  return problems;
}
