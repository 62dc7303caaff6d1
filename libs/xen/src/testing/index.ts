/**
 * @norm/xen/testing: a simulated Xen 4.17 host (xl + LVM + filesystem) with fault injection,
 * reachable in-process or through a real OpenSSH sshd. For tests and the demo only; ESLint
 * forbids importing it from production code.
 *
 * Commands a host accepts (optionally behind `sudo -n`; other sudo forms get sudo's errors):
 *   xl list [-l|-v|-Z|-c|-n] [DOM] | info [-n] [KEY] | create [-q|-p|-n|-f F] CFG [k=v...]
 *      | shutdown/reboot [-a|-w|-ww|-F] DOM | destroy [-f] DOM | pause/unpause DOM
 *      | domid NAME | domname ID | uptime [-s] [DOM...] | help   (prefixes like `xl li` work;
 *      other real sub-commands answer `xl-sim: sub-command 'X' is not simulated`, exit 1)
 *   vgs --noheadings --units m --nosuffix --separator '|' -o vg_name,vg_size,vg_free,pv_count,lv_count [VG...]
 *   lvs --noheadings --units m --nosuffix --separator '|' -o vg_name,lv_name,lv_size,origin,lv_attr [VG...]
 *   lvcreate -y -L <N>m -n NAME VG        lvcreate -y -s -L <N>m -n NAME VG/ORIGIN
 *   lvremove -f VG/NAME
 *   norm-argv ARGS...   prints JSON.stringify(ARGS) + newline (proves quoting round trips)
 * Anything else: `sh: 1: X: not found`, exit 127.
 */
export { ManualClock, realClock, XenSimState, DEFAULT_TIMINGS } from './xen-sim.state';
export type {
  SimClock,
  SimResult,
  SimHostOptions,
  SimTimings,
  SimDomain,
  SimLogicalVolume,
  SimVolumeGroup,
  SimFileReader,
} from './xen-sim.state';
export { SimulatedXenHost, SimFaults, SimConnectionDropped } from './xen-host.sim';
export type {
  SimCommandRecord,
  SimExecOptions,
  SimHang,
  CommandMatcher,
  SimNetworkControl,
} from './xen-host.sim';
export { MemoryFs, FsError } from './memory-fs.sim';
export { splitShellWords } from './shell-words.sim';
export type { ShellSplit } from './shell-words.sim';
export { generateEd25519, sshFingerprint, publicKeyBlob } from './host-key.sim';
export type { SimKeyPair } from './host-key.sim';
export { InProcessSshServer } from './ssh-sim.server';
export type { InProcessSshOptions } from './ssh-sim.server';
export { OpenSshHost, SSHD_PATH, realFileReader } from './openssh.sim';
export type { OpenSshHostOptions } from './openssh.sim';
export { startSimulatedFleet } from './fleet.sim';
export type {
  SimulatedFleet,
  SimulatedFleetHost,
  SimulatedFleetMode,
  SimulatedFleetIdentity,
  SimulatedFleetOptions,
} from './fleet.sim';
export { XL_LIST_HEADER, formatListRow } from './xl.sim';
export { cowMaxMb } from './lvm.sim';
