/**
 * xl's command table (tools/xl/xl_cmdtable.c): the names decide abbreviation (an xl
 * sub-command may be any unambiguous prefix, an exact name always wins), and the texts are
 * what `help()` prints to stdout for `-h` and for missing arguments. Only the commands the
 * simulator implements carry their usage and option texts.
 */
export interface XlCmdSpec {
  name: string;
  canDryrun: boolean;
  modifies: boolean;
  desc: string;
  usage?: string;
  options?: string;
}

const spec = (
  name: string,
  canDryrun: 0 | 1,
  modifies: 0 | 1,
  desc: string,
  usage?: string,
  options?: string,
): XlCmdSpec => ({
  name,
  canDryrun: canDryrun === 1,
  modifies: modifies === 1,
  desc,
  usage,
  options,
});

export const XL_CMD_TABLE: readonly XlCmdSpec[] = [
  spec(
    'create',
    1,
    1,
    'Create a domain from config file <filename>',
    '<ConfigFile> [options] [vars]',
    '-h                      Print this help.\n' +
      '-p                      Leave the domain paused after it is created.\n' +
      '-c                      Connect to the console after the domain is created.\n' +
      '-f FILE, --defconfig=FILE\n                     Use the given configuration file.\n' +
      '-q, --quiet             Quiet.\n' +
      '-n, --dryrun            Dry run - prints the resulting configuration\n' +
      '                         (deprecated in favour of global -N option).\n' +
      '-d                      Enable debug messages.\n' +
      '-F                      Run in foreground until death of the domain.\n' +
      '-e                      Do not wait in the background for the death of the domain.\n' +
      '-V, --vncviewer         Connect to the VNC display after the domain is created.\n' +
      '-A, --vncviewer-autopass\n' +
      '                        Pass VNC password to viewer via stdin.',
  ),
  spec('config-update', 1, 1, "Update a running domain's saved configuration"),
  spec(
    'list',
    0,
    0,
    'List information about all/some domains',
    '[options] [Domain]\n',
    '-l, --long              Output all VM details\n' +
      '-v, --verbose           Prints out UUIDs and security context\n' +
      '-Z, --context           Prints out security context\n' +
      '-c, --cpupool           Prints the cpupool the domain is in\n' +
      '-n, --numa              Prints out NUMA node affinity',
  ),
  spec(
    'destroy',
    0,
    1,
    'Terminate a domain immediately',
    '[options] <Domain>\n',
    '-f                      Permit destroying domain 0, which will only succeed\n' +
      '                        when run from disaggregated toolstack domain with a\n' +
      '                        hardware domain distinct from domain 0.',
  ),
  spec(
    'shutdown',
    0,
    1,
    'Issue a shutdown signal to a domain',
    '[options] <-a|Domain>',
    '-a, --all               Shutdown all guest domains.\n' +
      '-h                      Print this help.\n' +
      '-F                      Fallback to ACPI power event for HVM guests with\n' +
      '                        no PV drivers.\n' +
      '-w, --wait              Wait for guest(s) to shutdown.\n',
  ),
  spec(
    'reboot',
    0,
    1,
    'Issue a reboot signal to a domain',
    '[options] <-a|Domain>',
    '-a, --all               Shutdown all guest domains.\n' +
      '-h                      Print this help.\n' +
      '-F                      Fallback to ACPI reset event for HVM guests with\n' +
      '                        no PV drivers.\n' +
      '-w, --wait              Wait for guest(s) to reboot.\n',
  ),
  spec('pci-attach', 0, 1, 'Insert a new pass-through pci device'),
  spec('pci-detach', 0, 1, "Remove a domain's pass-through pci device"),
  spec('pci-list', 0, 0, 'List pass-through pci devices for a domain'),
  spec('pci-assignable-add', 0, 1, 'Make a device assignable for pci-passthru'),
  spec('pci-assignable-remove', 0, 1, 'Remove a device from being assignable'),
  spec('pci-assignable-list', 0, 0, 'List all the assignable pci devices'),
  spec('pause', 0, 1, 'Pause execution of a domain', '<Domain>'),
  spec('unpause', 0, 1, 'Unpause a paused domain', '<Domain>'),
  spec('console', 0, 0, "Attach to domain's console"),
  spec('vncviewer', 0, 0, "Attach to domain's VNC server."),
  spec('save', 0, 1, 'Save a domain state to restore later'),
  spec('migrate', 0, 1, 'Migrate a domain to another host'),
  spec('restore', 0, 1, 'Restore a domain from a saved state'),
  spec('migrate-receive', 0, 1, 'Restore a domain from a saved state'),
  spec('dump-core', 0, 1, 'Core dump a domain'),
  spec('cd-insert', 1, 1, "Insert a cdrom into a guest's cd drive"),
  spec('cd-eject', 1, 1, "Eject a cdrom from a guest's cd drive"),
  spec('mem-max', 0, 1, 'Set the maximum amount reservation for a domain'),
  spec('mem-set', 0, 1, 'Set the current memory usage for a domain'),
  spec('button-press', 0, 1, 'Indicate an ACPI button press to the domain'),
  spec('vcpu-list', 0, 0, 'List the VCPUs for all/some domains'),
  spec('vcpu-pin', 1, 1, 'Set which CPUs a VCPU can use'),
  spec('vcpu-set', 0, 1, 'Set the number of active VCPUs allowed for the domain'),
  spec('vm-list', 0, 0, 'List guest domains, excluding dom0, stubdoms, etc.'),
  spec(
    'info',
    0,
    0,
    'Get information about Xen host',
    '-n, --numa         List host NUMA topology information',
  ),
  spec('sharing', 0, 0, 'Get information about page sharing'),
  spec('sched-credit', 0, 1, 'Get/set credit scheduler parameters'),
  spec('sched-credit2', 0, 1, 'Get/set credit2 scheduler parameters'),
  spec('sched-rtds', 0, 1, 'Get/set rtds scheduler parameters'),
  spec('domid', 0, 0, 'Convert a domain name to domain id', '<DomainName>'),
  spec('domname', 0, 0, 'Convert a domain id to domain name', '<DomainId>'),
  spec('rename', 0, 1, 'Rename a domain'),
  spec('trigger', 0, 1, 'Send a trigger to a domain'),
  spec('sysrq', 0, 1, 'Send a sysrq to a domain'),
  spec('debug-keys', 0, 1, 'Send debug keys to Xen'),
  spec('set-parameters', 0, 1, 'Set hypervisor parameters'),
  spec('dmesg', 0, 0, 'Read and/or clear dmesg buffer'),
  spec('top', 0, 0, 'Monitor a host and the domains in real time'),
  spec('network-attach', 1, 1, 'Create a new virtual network device'),
  spec('network-list', 0, 0, 'List virtual network interfaces for a domain'),
  spec('network-detach', 0, 1, "Destroy a domain's virtual network device"),
  spec('channel-list', 0, 0, 'List virtual channel devices for a domain'),
  spec('block-attach', 1, 1, 'Create a new virtual block device'),
  spec('block-list', 0, 0, 'List virtual block devices for a domain'),
  spec('block-detach', 0, 1, "Destroy a domain's virtual block device"),
  spec('vtpm-attach', 1, 1, 'Create a new virtual TPM device'),
  spec('vtpm-list', 0, 0, 'List virtual TPM devices for a domain'),
  spec('vtpm-detach', 0, 1, "Destroy a domain's virtual TPM device"),
  spec('vdispl-attach', 1, 1, 'Create a new virtual display device'),
  spec('vdispl-list', 0, 0, 'List virtual display devices for a domain'),
  spec('vdispl-detach', 0, 1, "Destroy a domain's virtual display device"),
  spec('vsnd-attach', 1, 1, 'Create a new virtual sound device'),
  spec('vsnd-list', 0, 0, 'List virtual display devices for a domain'),
  spec('vsnd-detach', 0, 1, "Destroy a domain's virtual sound device"),
  spec('uptime', 0, 0, 'Print uptime for all/some domains', '[-s] [Domain]'),
  spec('claims', 0, 0, 'List outstanding claim information about all domains'),
  spec('cpupool-create', 1, 1, 'Create a new CPU pool'),
  spec('cpupool-list', 0, 0, 'List CPU pools on host'),
  spec('cpupool-destroy', 0, 1, 'Deactivates a CPU pool'),
  spec('cpupool-rename', 0, 1, 'Renames a CPU pool'),
  spec('cpupool-cpu-add', 0, 1, 'Adds a CPU to a CPU pool'),
  spec('cpupool-cpu-remove', 0, 1, 'Removes a CPU from a CPU pool'),
  spec('cpupool-migrate', 0, 1, 'Moves a domain into a CPU pool'),
  spec('cpupool-numa-split', 0, 1, 'Splits up the machine into one CPU pool per NUMA node'),
  spec('getenforce', 0, 0, 'Returns the current enforcing mode of the Flask Xen security module'),
  spec('setenforce', 0, 1, 'Sets the current enforcing mode of the Flask Xen security module'),
  spec('loadpolicy', 0, 1, 'Loads a new policy into the Flask Xen security module'),
  spec('remus', 0, 1, 'Enable Remus HA for domain'),
  spec('devd', 0, 1, 'Daemon that listens for devices and launches backends'),
  spec('psr-hwinfo', 0, 1, 'Show hardware information for Platform Shared Resource'),
  spec('psr-cmt-attach', 0, 1, 'Attach Cache Monitoring Technology service to a domain'),
  spec('psr-cmt-detach', 0, 1, 'Detach Cache Monitoring Technology service from a domain'),
  spec('psr-cmt-show', 0, 1, 'Show Cache Monitoring Technology information'),
  spec('psr-cat-set', 0, 1, 'Set cache capacity bitmasks(CBM) for a domain'),
  spec('psr-cat-show', 0, 1, 'Show Cache Allocation Technology information'),
  spec('psr-mba-set', 0, 1, 'Set throttling value (THRTL) for a domain'),
  spec('psr-mba-show', 0, 1, 'Show Memory Bandwidth Allocation information'),
  spec('usbctrl-attach', 0, 1, 'Create a virtual USB controller for a domain'),
  spec('usbctrl-detach', 0, 1, 'Remove the virtual USB controller specified by <DevId> for a domain'),
  spec('usbdev-attach', 0, 1, 'Attach a USB device to a domain'),
  spec('usbdev-detach', 0, 1, 'Detach a USB device from a domain'),
  spec('usb-list', 0, 0, 'List information about all USB controllers and devices for a domain'),
  spec('qemu-monitor-command', 0, 1, 'Issue a qemu monitor command to the device model of a domain'),
];

/** `cmdtable_lookup`: exact name wins, otherwise exactly one prefix match, else none. */
export function lookupXlCommand(s: string): XlCmdSpec | undefined {
  let found: XlCmdSpec | undefined;
  let count = 0;
  for (const cmd of XL_CMD_TABLE) {
    if (cmd.name.startsWith(s)) {
      if (cmd.name.length === s.length) return cmd;
      found = cmd;
      count++;
    }
  }
  return count === 1 ? found : undefined;
}

/** `help(command)` from tools/xl/xl.c, printed on stdout. */
export function xlHelp(command?: string): string {
  if (command === undefined || command === 'help') {
    let out = 'Usage xl [-vfNtT] <subcommand> [args]\n\nxl full list of subcommands:\n\n';
    for (const cmd of XL_CMD_TABLE) {
      out += ` ${cmd.name.padEnd(19)} `;
      if (cmd.name.length > 19) out += `\n ${''.padEnd(19)} `;
      out += `${cmd.desc}\n`;
    }
    return out;
  }
  const cmd = lookupXlCommand(command);
  if (!cmd) return `command "${command}" not implemented\n`;
  let out = `Usage: xl [-v${cmd.modifies ? 'f' : ''}${cmd.canDryrun ? 'N' : ''}] ${cmd.name} ${cmd.usage ?? ''}\n\n${cmd.desc}.\n\n`;
  if (cmd.options !== undefined) out += `Options:\n\n${cmd.options}\n`;
  return out;
}
