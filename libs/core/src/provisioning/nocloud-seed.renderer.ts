import { type NoCloudSeed } from '../ports';
import { bootstrapValues, type GuestBootstrap } from './guest-bootstrap';

/** The guest as its seed names it. */
export interface SeedGuest {
  /** cloud-init runs its once-per-instance modules (write_files among them) once per id. */
  instanceId: string;
  hostname: string;
  /** The MAC Norm allocated: network-config matches the NIC by it, whatever the guest calls it. */
  mac: string | null;
}

/** The agent's keys (agent/agent.conf.example) for the bootstrap values it reads from its file. */
const AGENT_CONF_KEYS: Record<string, string> = {
  'norm.heartbeat_url': 'NORM_HEARTBEAT_URL',
  'norm.token': 'NORM_TOKEN',
  'norm.interval': 'NORM_INTERVAL',
};

/**
 * A YAML double-quoted scalar. JSON's string syntax is a subset of YAML's double-quoted style
 * (1.1, which cloud-init's PyYAML reads, and 1.2), so nothing in a value can end the scalar or
 * start another key; the values are checked URL-safe words besides.
 */
const q = (s: string): string => JSON.stringify(s);

/**
 * The files of a disk-boot guest's NoCloud seed (README "Guest bootstrap data"): `meta-data`
 * names the instance, `user-data` has cloud-init write the heartbeat agent's config file
 * (root-only: it holds the token), `network-config` gives the NIC Norm's address so the guest
 * needs no DHCP. Pure: the token is in the result and goes nowhere else.
 */
export function renderNoCloudSeed(b: GuestBootstrap, guest: SeedGuest): NoCloudSeed {
  // The one validation of the values, shared with the kernel-boot form.
  const values = new Map(bootstrapValues(b));
  const metaData = `instance-id: ${q(guest.instanceId)}\nlocal-hostname: ${q(guest.hostname)}\n`;

  // The agent's parser takes KEY=VALUE lines, no quotes, and skips `#` lines.
  const agentConf = [
    '# Written by cloud-init from the NoCloud seed Norm attached at provisioning.',
    ...[...values]
      .filter(([key]) => key in AGENT_CONF_KEYS)
      .map(([key, value]) => `${AGENT_CONF_KEYS[key]}=${value}`),
  ].join('\n');
  const userData = [
    '#cloud-config',
    "# Norm's heartbeat agent settings (agent/agent.conf.example): URL, instance token, interval.",
    'write_files:',
    '  - path: /etc/norm/agent.conf',
    '    owner: "root:root"',
    '    permissions: "0600"',
    `    content: ${q(`${agentConf}\n`)}`,
    '',
  ].join('\n');

  const ip = values.get('norm.ip');
  const gw = values.get('norm.gw');
  // Without an address (or a MAC to find the NIC by) the image's own network setup stays.
  if (ip === undefined || guest.mac === null) return { metaData, userData };
  // Named eth0 (set-name) because the agent's fallback, NORM_AGENT_IFACE, defaults to it, and
  // because the renderers other than netplan name the device after this key.
  const networkConfig = [
    'version: 2',
    'ethernets:',
    '  eth0:',
    '    match:',
    `      macaddress: ${q(guest.mac.toLowerCase())}`,
    '    set-name: eth0',
    `    addresses: [${q(ip)}]`,
    ...(gw !== undefined ? ['    routes:', `      - to: "0.0.0.0/0"`, `        via: ${q(gw)}`] : []),
    '',
  ].join('\n');
  return { metaData, userData, networkConfig };
}
