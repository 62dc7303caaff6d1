import { type DomainConfig } from '@norm/core';
import {
  assertAbsolutePath,
  assertBridgeName,
  assertDomainName,
  assertIpv4,
  assertMac,
  assertPositiveInt,
  assertUuid,
  unsafeArgument,
} from '../validation/allow-lists';

/**
 * Renders the xl.cfg Norm uploads before `xl create`. Every value is validated first: the
 * file is parsed by libxlu and then by xl's disk and vif mini-languages, where a stray comma
 * or quote would change meaning rather than fail.
 */

/** Xen copies a PV command line into a 1024-byte buffer (incl. NUL) and drops the rest. */
export const MAX_CMDLINE_BYTES = 1023;
/** Sanity ceilings, far above any host Norm manages, to catch unit mix-ups (KiB for MiB). */
export const MAX_MEMORY_MB = 16 * 1024 * 1024;
export const MAX_VCPUS = 512;

// Words a Linux `root=` takes: a device path, UUID=…, LABEL=…, PARTUUID=…; no spaces.
const ROOT = /^[A-Za-z0-9_./:=@%+,-]{1,255}$/;
const VDEV = /^(?:xvd|hd|sd)[a-z]{1,3}(?:[1-9][0-9]?)?$/;
const ACTIONS = new Set(['destroy', 'restart', 'preserve']);
/** C0 controls and DEL: a newline would end the statement, and nothing else belongs on a kernel command line. */
export function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/** A string literal for the xl.cfg lexer: C escapes for the quote, backslash and control characters. */
export function quoteXlCfgString(s: string, quote: '"' | "'" = '"'): string {
  let out = quote;
  for (const ch of s) {
    const code = ch.charCodeAt(0);
    if (ch === '\0') throw unsafeArgument('xl.cfg string', 'must not contain NUL');
    if (ch === quote || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
}

function kernelCommandLine(root: string | undefined, extra: string | undefined): string | undefined {
  // The order xl uses to build the command line from root= and extra= (XL.md §4.2).
  if (root !== undefined) return extra !== undefined ? `root=${root} ${extra}` : `root=${root}`;
  return extra;
}

function validate(cfg: DomainConfig): void {
  assertDomainName(cfg.name, 'name');
  if (cfg.uuid !== undefined) assertUuid(cfg.uuid, 'uuid');
  assertPositiveInt(cfg.memoryMb, 'memoryMb', MAX_MEMORY_MB);
  assertPositiveInt(cfg.vcpus, 'vcpus', MAX_VCPUS);
  const boot = cfg.boot;
  if (boot.kind === 'kernel') {
    assertAbsolutePath(boot.kernel, 'boot.kernel');
    if (boot.ramdisk !== undefined) assertAbsolutePath(boot.ramdisk, 'boot.ramdisk');
    if (boot.root !== undefined && !ROOT.test(boot.root)) {
      throw unsafeArgument(
        'boot.root',
        'must be 1-255 characters of A-Z, a-z, 0-9 and _./:=@%+,-',
        boot.root,
      );
    }
    if (boot.extra !== undefined) {
      if (typeof boot.extra !== 'string') throw unsafeArgument('boot.extra', 'must be a string');
      if (hasControlCharacter(boot.extra))
        throw unsafeArgument('boot.extra', 'must not contain control characters (newline, NUL, …)');
      if (/\p{Cs}/u.test(boot.extra)) throw unsafeArgument('boot.extra', 'must be valid Unicode');
    }
    const cmdline = kernelCommandLine(boot.root, boot.extra);
    if (cmdline !== undefined && Buffer.byteLength(cmdline, 'utf8') > MAX_CMDLINE_BYTES) {
      throw unsafeArgument(
        'boot.extra',
        `kernel command line must be at most ${MAX_CMDLINE_BYTES} bytes (Xen truncates longer ones)`,
      );
    }
  }
  const vdevs = new Set<string>();
  cfg.disks.forEach((disk, i) => {
    assertAbsolutePath(disk.target, `disks[${i}].target`);
    if (!VDEV.test(disk.vdev)) {
      throw unsafeArgument(
        `disks[${i}].vdev`,
        'must look like xvda, hdb or sdc (optionally a partition number)',
        disk.vdev,
      );
    }
    if (vdevs.has(disk.vdev)) throw unsafeArgument(`disks[${i}].vdev`, 'is used twice', disk.vdev);
    vdevs.add(disk.vdev);
    if (disk.access !== 'rw' && disk.access !== 'ro')
      throw unsafeArgument(`disks[${i}].access`, 'must be rw or ro');
    if (disk.format !== undefined && disk.format !== 'raw' && disk.format !== 'qcow2') {
      throw unsafeArgument(`disks[${i}].format`, 'must be raw or qcow2');
    }
  });
  const macs = new Set<string>();
  cfg.vifs.forEach((vif, i) => {
    assertMac(vif.mac, `vifs[${i}].mac`);
    const mac = vif.mac.toLowerCase();
    if (macs.has(mac)) throw unsafeArgument(`vifs[${i}].mac`, 'is used twice', vif.mac);
    macs.add(mac);
    assertBridgeName(vif.bridge, `vifs[${i}].bridge`);
    if (vif.ip !== undefined) assertIpv4(vif.ip, `vifs[${i}].ip`);
  });
  for (const [field, action] of [
    ['onPoweroff', cfg.onPoweroff],
    ['onReboot', cfg.onReboot],
    ['onCrash', cfg.onCrash],
  ] as const) {
    if (action !== undefined && !ACTIONS.has(action))
      throw unsafeArgument(field, 'must be destroy, restart or preserve');
  }
}

export function renderXlCfg(cfg: DomainConfig): string {
  validate(cfg);
  const q = (s: string): string => quoteXlCfgString(s);
  const lines: string[] = ['# Written by Norm; changes here are overwritten on the next create.'];
  lines.push(`name = ${q(cfg.name)}`);
  if (cfg.uuid !== undefined) lines.push(`uuid = ${q(cfg.uuid.toLowerCase())}`);
  lines.push('type = "pv"');
  lines.push(`memory = ${cfg.memoryMb}`);
  // maxmem = memory: no ballooning above the size the placement accounted for.
  lines.push(`maxmem = ${cfg.memoryMb}`);
  lines.push(`vcpus = ${cfg.vcpus}`);
  const boot = cfg.boot;
  switch (boot.kind) {
    case 'pygrub':
      lines.push('bootloader = "pygrub"');
      break;
    case 'kernel':
      lines.push(`kernel = ${q(boot.kernel)}`);
      if (boot.ramdisk !== undefined) lines.push(`ramdisk = ${q(boot.ramdisk)}`);
      if (boot.root !== undefined) lines.push(`root = ${q(boot.root)}`);
      if (boot.extra !== undefined) lines.push(`extra = ${q(boot.extra)}`);
      break;
  }
  // target= swallows the rest of a DISKSPEC, so it must come last.
  const disks = cfg.disks.map((d) =>
    quoteXlCfgString(
      `format=${d.format ?? 'raw'}, vdev=${d.vdev}, access=${d.access}, target=${d.target}`,
      "'",
    ),
  );
  lines.push(`disk = [ ${disks.join(', ')} ]`);
  const vifs = cfg.vifs.map((v) =>
    quoteXlCfgString(
      `mac=${v.mac.toLowerCase()},bridge=${v.bridge}${v.ip !== undefined ? `,ip=${v.ip}` : ''}`,
      "'",
    ),
  );
  lines.push(`vif = [ ${vifs.join(', ')} ]`);
  if (cfg.onPoweroff !== undefined) lines.push(`on_poweroff = ${q(cfg.onPoweroff)}`);
  if (cfg.onReboot !== undefined) lines.push(`on_reboot = ${q(cfg.onReboot)}`);
  if (cfg.onCrash !== undefined) lines.push(`on_crash = ${q(cfg.onCrash)}`);
  return `${lines.join('\n')}\n`;
}
