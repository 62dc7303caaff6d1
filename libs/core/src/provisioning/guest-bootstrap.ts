import { DomainError } from '../errors';

/** Where guests reach Norm, from NORM_GUEST_API_URL and NORM_GUEST_HEARTBEAT_INTERVAL. */
export interface GuestBootstrapOptions {
  /** Unset: guests get no heartbeat URL (their agent idles); the token is still issued. */
  apiUrl?: string;
  intervalS: number;
}

/** What one guest needs to phone home, as the agent (agent/norm-heartbeat) reads it. */
export interface GuestBootstrap {
  heartbeatUrl?: string;
  /** The instance token in clear. Never logged, never audited: it only travels to the host. */
  token: string;
  intervalS: number;
  /** The IPAM address with its prefix (`10.0.2.61/24`): DHCP pools are not Norm's. */
  ipCidr?: string;
  gateway?: string;
}

export function guestBootstrapFor(
  options: GuestBootstrapOptions,
  instanceId: string,
  token: string,
  network: { cidr: string; gateway: string | null },
  ip: string | null,
): GuestBootstrap {
  const prefix = network.cidr.split('/')[1];
  return {
    ...(options.apiUrl
      ? { heartbeatUrl: `${options.apiUrl.replace(/\/+$/, '')}/v1/instances/${instanceId}/heartbeat` }
      : {}),
    token,
    intervalS: options.intervalS,
    ...(ip && prefix ? { ipCidr: `${ip}/${prefix}` } : {}),
    ...(network.gateway ? { gateway: network.gateway } : {}),
  };
}

/**
 * Every bootstrap value is one word of URL-safe characters: a kernel command line word is split
 * on spaces and may not carry quotes the guest would keep, and the same rule keeps the NoCloud
 * seed's YAML and the agent's KEY=VALUE file to one line per value with nothing to escape.
 */
const BOOTSTRAP_VALUE = /^[A-Za-z0-9._~:/?#[\]@!$&()*+,;=%-]+$/;

/** The agent's settings as `norm.*` names and values, each checked; the one place they are. */
export function bootstrapValues(b: GuestBootstrap): Array<[string, string]> {
  const words: Array<[string, string | undefined]> = [
    ['norm.heartbeat_url', b.heartbeatUrl],
    ['norm.token', b.token],
    ['norm.interval', String(b.intervalS)],
    ['norm.ip', b.ipCidr],
    ['norm.gw', b.gateway],
  ];
  return words
    .filter((w): w is [string, string] => w[1] !== undefined)
    .map(([key, value]) => {
      if (!BOOTSTRAP_VALUE.test(value))
        // The value itself stays out of the error: it may be the token.
        throw new DomainError('ValidationFailed', 'a guest bootstrap value is not one URL-safe word', {
          field: key,
        });
      return [key, value];
    });
}

/**
 * The kernel-boot form (xl.cfg `extra=`): `norm.heartbeat_url=… norm.token=… norm.interval=…
 * norm.ip=…/NN norm.gw=…`, the words the agent reads from /proc/cmdline. Each value is one word
 * of URL-safe characters, so nothing can inject another parameter.
 */
export function bootstrapKernelArgs(b: GuestBootstrap): string {
  return bootstrapValues(b)
    .map(([key, value]) => `${key}=${value}`)
    .join(' ');
}
