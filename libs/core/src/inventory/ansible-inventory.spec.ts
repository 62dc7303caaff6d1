import { describe, expect, it } from 'vitest';
import { type InstanceRecord } from '../vm-requests/vm-request.port';
import { type ImageRecord, type NetworkRecord } from './catalogue.port';
import { type HostRecord } from './host.port';
import { buildAnsibleInventory, groupName } from './ansible-inventory';

const host = (id: string, name: string): HostRecord =>
  ({
    id,
    name,
    address: `10.0.0.${id}`,
    port: 22,
    sshUser: 'norm',
    labels: { rack: 'r1' },
    status: 'online',
  }) as unknown as HostRecord;

const instance = (name: string, over: Partial<InstanceRecord> = {}): InstanceRecord => ({
  id: `id-${name}`,
  vmRequestId: `req-${name}`,
  name,
  ownerId: 'o1',
  hostId: '1',
  domainName: name,
  domid: 3,
  lifecycleClass: 'cattle',
  state: 'running',
  diskVolume: null,
  ip: '192.168.10.5',
  mac: '00:16:3e:00:00:01',
  lastHeartbeatAt: null,
  heartbeatDeadlineAt: null,
  heartbeatTimeoutS: null,
  failingTargets: [],
  labels: { env: 'prod-eu' },
  version: 1,
  createdAt: new Date(0),
  updatedAt: new Date(0),
  ...over,
});

const input = (instances: InstanceRecord[], includeXenHosts = true) => ({
  hosts: [host('1', 'xen-a'), host('2', 'xen-b')],
  instances,
  requests: new Map(instances.map((i) => [i.vmRequestId, { imageId: 'img', networkId: 'net' }])),
  images: [{ id: 'img', name: 'debian-12' } as ImageRecord],
  networks: [{ id: 'net', name: 'prod' } as NetworkRecord],
  includeXenHosts,
});

describe('buildAnsibleInventory', () => {
  it('groups live instances by host, network, image, lifecycle class and label, with hostvars', () => {
    const inv = buildAnsibleInventory(
      input([instance('web-1'), instance('db-1', { lifecycleClass: 'pet', hostId: '2' })]),
    );
    expect(inv.xen_hosts).toEqual({ hosts: ['xen-a', 'xen-b'] });
    expect(inv.host_xen_a).toEqual({ hosts: ['web-1'] });
    expect(inv.host_xen_b).toEqual({ hosts: ['db-1'] });
    expect(inv.network_prod).toEqual({ hosts: ['db-1', 'web-1'] });
    expect(inv.image_debian_12).toEqual({ hosts: ['db-1', 'web-1'] });
    expect(inv.lifecycle_cattle).toEqual({ hosts: ['web-1'] });
    expect(inv.lifecycle_pet).toEqual({ hosts: ['db-1'] });
    expect(inv.label_env_prod_eu).toEqual({ hosts: ['db-1', 'web-1'] });
    expect(inv._meta.hostvars['web-1']).toMatchObject({
      ansible_host: '192.168.10.5',
      norm_host: 'xen-a',
      norm_image: 'debian-12',
      norm_network: 'prod',
      norm_lifecycle_class: 'cattle',
    });
    expect(inv._meta.hostvars['xen-a']).toMatchObject({ ansible_host: '10.0.0.1', ansible_user: 'norm' });
  });

  it('leaves out instances that are not live, from every group', () => {
    const inv = buildAnsibleInventory(
      input([
        instance('gone', { state: 'decommissioned' }),
        instance('going', { state: 'decommissioning' }),
        instance('broken', { state: 'failed' }),
        instance('new', { state: 'provisioning' }),
        instance('off', { state: 'stopped' }),
      ]),
    );
    const members = Object.entries(inv)
      .filter(([k]) => k !== '_meta')
      .flatMap(([, g]) => ('hosts' in g ? (g.hosts ?? []) : []));
    expect(new Set(members)).toEqual(new Set(['off', 'xen-a', 'xen-b']));
    expect(Object.keys(inv._meta.hostvars).sort()).toEqual(['off', 'xen-a', 'xen-b']);
  });

  it('omits the Xen hosts for a caller without hosts:read', () => {
    const inv = buildAnsibleInventory(input([instance('web-1')], false));
    expect(inv.xen_hosts).toBeUndefined();
    expect(inv._meta.hostvars['xen-a']).toBeUndefined();
  });

  it('makes group names Ansible identifiers', () => {
    expect(groupName('label', 'team/app', 'Web.1')).toBe('label_team_app_web_1');
  });
});
