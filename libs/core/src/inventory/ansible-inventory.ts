import { type ActingContext } from '../identity/identity.service';
import { type InstanceService } from '../instances/instance.service';
import { type InstanceRecord, type VmRequestUnitOfWork } from '../vm-requests/vm-request.port';
import { type InstanceState } from '../vm-requests/vm-request.state';
import { type ImageRecord, type InventoryUnitOfWork, type NetworkRecord } from './catalogue.port';
import { type HostRecord } from './host.port';

/**
 * Norm's fleet as an Ansible dynamic inventory (the JSON `ansible-inventory --list` reads).
 * Only live instances are listed: a decommissioned (or decommissioning, or failed) instance
 * drops out of every group, so a play run after the decommission no longer reaches it;
 * that is one of the deregistrations. Provisioning instances are left out until their
 * domain is confirmed running.
 */
export const INVENTORY_STATES: readonly InstanceState[] = ['running', 'stopping', 'stopped'];

export interface AnsibleGroup {
  hosts?: string[];
  children?: string[];
}

export interface AnsibleInventory {
  _meta: { hostvars: Record<string, Record<string, unknown>> };
  [group: string]: AnsibleGroup | { hostvars: Record<string, Record<string, unknown>> };
}

export interface AnsibleInventoryInput {
  hosts: readonly HostRecord[];
  instances: readonly InstanceRecord[];
  /** imageId and networkId of each instance's VM request, by request id. */
  requests: ReadonlyMap<string, { imageId: string | null; networkId: string | null }>;
  images: readonly ImageRecord[];
  networks: readonly NetworkRecord[];
  /** Whether the Xen hosts are listed (the caller may read instances but not hosts). */
  includeXenHosts: boolean;
}

/** Ansible group names are identifiers: anything else becomes `_`, so `env=prod-eu` is `label_env_prod_eu`. */
export function groupName(...parts: string[]): string {
  return parts
    .join('_')
    .replace(/[^A-Za-z0-9_]/g, '_')
    .toLowerCase();
}

/** Pure: groups by host, network, image, lifecycle class and label, plus `xen_hosts`. */
export function buildAnsibleInventory(input: AnsibleInventoryInput): AnsibleInventory {
  const hostvars: Record<string, Record<string, unknown>> = {};
  const groups = new Map<string, Set<string>>();
  const add = (group: string, member: string): void => {
    const set = groups.get(group) ?? new Set<string>();
    set.add(member);
    groups.set(group, set);
  };
  const hostsById = new Map(input.hosts.map((h) => [h.id, h]));
  const imageNames = new Map(input.images.map((i) => [i.id, i.name]));
  const networkNames = new Map(input.networks.map((n) => [n.id, n.name]));

  if (input.includeXenHosts) {
    groups.set('xen_hosts', new Set());
    for (const h of input.hosts) {
      add('xen_hosts', h.name);
      hostvars[h.name] = {
        ansible_host: h.address,
        ansible_port: h.port,
        ansible_user: h.sshUser,
        norm_kind: 'xen_host',
        norm_host_id: h.id,
        norm_status: h.status,
        norm_labels: h.labels,
      };
    }
  }

  for (const i of input.instances) {
    if (!INVENTORY_STATES.includes(i.state)) continue;
    const host = i.hostId ? hostsById.get(i.hostId) : undefined;
    const request = input.requests.get(i.vmRequestId);
    const image = request?.imageId ? imageNames.get(request.imageId) : undefined;
    const network = request?.networkId ? networkNames.get(request.networkId) : undefined;
    hostvars[i.name] = {
      // Without an address yet Ansible falls back to the name, which is what DNS would use.
      ...(i.ip ? { ansible_host: i.ip } : {}),
      norm_kind: 'instance',
      norm_instance_id: i.id,
      norm_state: i.state,
      norm_lifecycle_class: i.lifecycleClass,
      norm_host: host?.name ?? null,
      norm_image: image ?? null,
      norm_network: network ?? null,
      norm_mac: i.mac,
      norm_labels: i.labels,
    };
    add('norm_instances', i.name);
    add(groupName('lifecycle', i.lifecycleClass), i.name);
    if (host) add(groupName('host', host.name), i.name);
    if (image) add(groupName('image', image), i.name);
    if (network) add(groupName('network', network), i.name);
    for (const [key, value] of Object.entries(i.labels)) add(groupName('label', key, value), i.name);
  }

  const inventory: AnsibleInventory = { _meta: { hostvars } };
  const names = [...groups.keys()].sort();
  for (const name of names) inventory[name] = { hosts: [...groups.get(name)!].sort() };
  inventory.all = { children: ['ungrouped', ...names] };
  return inventory;
}

export interface AnsibleInventoryDeps {
  instances: InstanceService;
  inventory: InventoryUnitOfWork;
  requests: VmRequestUnitOfWork;
}

/** Reads what buildAnsibleInventory needs, within the caller's scope. */
export class AnsibleInventoryService {
  /** Page size for the instance listing: large pages, since the inventory wants them all. */
  private static readonly PAGE = 500;

  constructor(private readonly deps: AnsibleInventoryDeps) {}

  async build(ctx: ActingContext): Promise<AnsibleInventory> {
    const instances: InstanceRecord[] = [];
    let cursor: string | undefined;
    do {
      // InstanceService applies the `own` scope, so a requester sees only their instances.
      const page = await this.deps.instances.list(ctx, { limit: AnsibleInventoryService.PAGE, cursor });
      instances.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    const live = instances.filter((i) => INVENTORY_STATES.includes(i.state));

    const [hosts, images, networks] = await this.deps.inventory.run((tx) =>
      Promise.all([tx.hosts.list(), tx.images.list(), tx.networks.list()]),
    );
    const requests = await this.deps.requests.run(async (tx) => {
      const map = new Map<string, { imageId: string | null; networkId: string | null }>();
      for (const id of new Set(live.map((i) => i.vmRequestId))) {
        const r = await tx.requests.get(id);
        if (r) map.set(id, { imageId: r.imageId, networkId: r.networkId });
      }
      return map;
    });
    return buildAnsibleInventory({
      hosts,
      instances: live,
      requests,
      images,
      networks,
      // Host addresses and SSH users are hosts:read material, not instances:read.
      includeXenHosts: ctx.subject.grants['hosts:read'] !== undefined,
    });
  }
}
