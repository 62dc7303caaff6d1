import {
  formatLvmMb,
  type SimLogicalVolume,
  type SimResult,
  type SimVolumeGroup,
  type XenSimState,
} from './xen-sim.state';

/**
 * LVM2 (Debian bookworm, 2.03.16) as Norm's command builders call it: `vgs`, `lvs`,
 * `lvcreate`, `lvremove` with the argv forms listed in the simulator's README comment in
 * index.ts. Messages and exit codes are the ones xenlab observed (exit 5 = ECMD_FAILED,
 * exit 3 = EINVALID_CMD_LINE). Options outside those forms are refused the way LVM refuses
 * unknown options, so a builder that drifts is caught in tests.
 */
const ok = (stdout: string, stderr = ''): SimResult => ({ stdout, stderr, exitCode: 0 });
const fail = (stderr: string, exitCode = 5, stdout = ''): SimResult => ({ stdout, stderr, exitCode });

function badCmdLine(tool: string, what: string): SimResult {
  return fail(`${tool}: ${what}\n  Error during parsing of command line.\n`, 3);
}

interface ReportArgs {
  columns: string[];
  positionals: string[];
}

/** `--noheadings --units m --nosuffix --separator '|' -o COLS [VG...]`, in any order. */
function parseReportArgs(tool: string, args: readonly string[]): ReportArgs | SimResult {
  let noheadings = false;
  let units: string | undefined;
  let nosuffix = false;
  let separator: string | undefined;
  let columns: string[] | undefined;
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    const next = (): string | undefined => args[++i];
    if (a === '--noheadings') noheadings = true;
    else if (a === '--nosuffix') nosuffix = true;
    else if (a === '--units') units = next();
    else if (a === '--separator') separator = next();
    else if (a === '-o' || a === '--options') columns = (next() ?? '').split(',');
    else if (a.startsWith('-')) return badCmdLine(tool, `unrecognized option '${a}'`);
    else positionals.push(a);
  }
  if (!noheadings || units !== 'm' || !nosuffix || separator !== '|' || !columns) {
    return fail(
      `  ${tool}-sim: only '--noheadings --units m --nosuffix --separator | -o COLUMNS' is simulated\n`,
      3,
    );
  }
  return { columns, positionals };
}

function vgSizeMb(vg: SimVolumeGroup): number {
  return vg.extentCount * vg.extentMb;
}

function vgFreeMb(state: XenSimState, vg: SimVolumeGroup): number {
  return vgSizeMb(vg) - state.lvs.filter((lv) => lv.vg === vg.name).reduce((s, lv) => s + lv.sizeMb, 0);
}

function lvAttr(state: XenSimState, lv: SimLogicalVolume): string {
  const open = state.domainsUsingLv(lv).length > 0 ? 'o' : '-';
  if (lv.origin !== undefined) return `swi-a${open}s---`;
  if (state.lvs.some((s) => s.vg === lv.vg && s.origin === lv.name)) return `owi-a${open}s---`;
  return `-wi-a${open}----`;
}

function vgNotFound(name: string): SimResult {
  return fail(`  Volume group "${name}" not found\n  Cannot process volume group ${name}\n`);
}

export function runVgs(state: XenSimState, args: readonly string[]): SimResult {
  const r = parseReportArgs('vgs', args);
  if ('exitCode' in r) return r;
  let vgs = [...state.vgs.values()].sort((a, b) => a.name.localeCompare(b.name));
  if (r.positionals.length > 0) {
    const missing = r.positionals.find((p) => !state.vgs.has(p));
    if (missing !== undefined) return vgNotFound(missing);
    vgs = vgs.filter((vg) => r.positionals.includes(vg.name));
  }
  let out = '';
  for (const vg of vgs) {
    const cells: string[] = [];
    for (const col of r.columns) {
      switch (col) {
        case 'vg_name':
          cells.push(vg.name);
          break;
        case 'vg_size':
          cells.push(formatLvmMb(vgSizeMb(vg)));
          break;
        case 'vg_free':
          cells.push(formatLvmMb(vgFreeMb(state, vg)));
          break;
        case 'pv_count':
          cells.push('1');
          break;
        case 'lv_count':
          cells.push(String(state.lvs.filter((lv) => lv.vg === vg.name).length));
          break;
        case 'vg_extent_size':
          cells.push(formatLvmMb(vg.extentMb));
          break;
        default:
          return fail(`  Unrecognised field: ${col}\n`, 3);
      }
    }
    out += `  ${cells.join('|')}\n`;
  }
  return ok(out);
}

export function runLvs(state: XenSimState, args: readonly string[]): SimResult {
  const r = parseReportArgs('lvs', args);
  if ('exitCode' in r) return r;
  const missing = r.positionals.find((p) => !state.vgs.has(p));
  if (missing !== undefined) return vgNotFound(missing);
  // lvs sorts by vg_name, lv_name by default.
  const lvs = state.lvs
    .filter((lv) => r.positionals.length === 0 || r.positionals.includes(lv.vg))
    .sort((a, b) => a.vg.localeCompare(b.vg) || a.name.localeCompare(b.name));
  let out = '';
  for (const lv of lvs) {
    const cells: string[] = [];
    for (const col of r.columns) {
      switch (col) {
        case 'vg_name':
          cells.push(lv.vg);
          break;
        case 'lv_name':
          cells.push(lv.name);
          break;
        case 'lv_size':
          cells.push(formatLvmMb(lv.sizeMb));
          break;
        case 'origin':
          cells.push(lv.origin ?? '');
          break;
        case 'lv_attr':
          cells.push(lvAttr(state, lv));
          break;
        case 'lv_path':
          cells.push(`/dev/${lv.vg}/${lv.name}`);
          break;
        default:
          return fail(`  Unrecognised field: ${col}\n`, 3);
      }
    }
    out += `  ${cells.join('|')}\n`;
  }
  return ok(out);
}

/** Size argument of -L: number with an optional unit (default MiB), as LVM reads it. */
function parseSizeMb(s: string): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)([bBsSkKmMgGtT]?)$/.exec(s);
  if (!m?.[1]) return undefined;
  const n = parseFloat(m[1]);
  const unit = (m[2] ?? 'm').toLowerCase() || 'm';
  const factor: Record<string, number> = {
    b: 1 / 1048576,
    s: 512 / 1048576,
    k: 1 / 1024,
    m: 1,
    g: 1024,
    t: 1024 * 1024,
  };
  return n * (factor[unit] ?? 1);
}

/**
 * Largest useful copy-on-write area for a snapshot of `originMb` (lvm2 `_cow_max_size` with
 * 4 KiB chunks): header chunk + one chunk per origin chunk + metadata, rounded to extents.
 * For a 64 MiB origin this is 68 MiB, as xenlab printed.
 */
export function cowMaxMb(originMb: number, extentMb: number): number {
  const chunkKb = 4;
  const originChunks = Math.ceil((originMb * 1024) / chunkKb);
  const perMetadataArea = (chunkKb * 1024) / 16;
  const metadataChunks = Math.ceil(originChunks / perMetadataArea);
  const totalMb = ((1 + originChunks + metadataChunks) * chunkKb) / 1024;
  return Math.ceil(totalMb / extentMb) * extentMb;
}

function validLvName(name: string): boolean {
  return /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/.test(name) && name !== '.' && name !== '..' && name.length <= 127;
}

export function runLvcreate(state: XenSimState, args: readonly string[]): SimResult {
  let snapshot = false;
  let size: string | undefined;
  let name: string | undefined;
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '-y' || a === '--yes') continue;
    else if (a === '-s' || a === '--snapshot') snapshot = true;
    else if (a === '-L' || a === '--size') size = args[++i];
    else if (a.startsWith('-L') && a.length > 2) size = a.slice(2);
    else if (a === '-n' || a === '--name') name = args[++i];
    else if (a.startsWith('-')) return badCmdLine('lvcreate', `unrecognized option '${a}'`);
    else positionals.push(a);
  }
  const target = positionals[0];
  if (size === undefined || name === undefined || target === undefined || positionals.length !== 1) {
    return fail('  lvcreate-sim: expected `lvcreate -y [-s] -L <N>m -n NAME VG[/ORIGIN]`\n', 3);
  }
  const requestedMb = parseSizeMb(size);
  if (requestedMb === undefined || requestedMb <= 0)
    return fail(`  Invalid argument for --size: ${size}\n  Error during parsing of command line.\n`, 3);
  if (!validLvName(name))
    return fail(
      `  Logical volume name "${name}" is invalid.\n  Run \`lvcreate --help' for more information.\n`,
      3,
    );
  const slash = target.indexOf('/');
  const vgName = slash >= 0 ? target.slice(0, slash) : target;
  const originName = slash >= 0 ? target.slice(slash + 1) : undefined;
  if (snapshot !== (originName !== undefined))
    return fail('  lvcreate-sim: use `-s VG/ORIGIN` for snapshots and `VG` otherwise\n', 3);
  const vg = state.vgs.get(vgName);
  if (!vg) return vgNotFound(vgName);
  let stdout = '';
  let extents = Math.ceil(requestedMb / vg.extentMb);
  if (extents * vg.extentMb !== requestedMb)
    stdout += `  Rounding up size to full physical extent ${formatLvmMb(extents * vg.extentMb)} MiB.\n`;
  let origin: SimLogicalVolume | undefined;
  if (originName !== undefined) {
    origin = state.lvs.find((lv) => lv.vg === vgName && lv.name === originName);
    if (!origin)
      return fail(`  Snapshot origin LV ${originName} not found in Volume group ${vgName}.\n`, 5, stdout);
    if (origin.origin !== undefined) return fail('  Snapshots of snapshots are not supported.\n', 5, stdout);
    const maxMb = cowMaxMb(origin.sizeMb, vg.extentMb);
    if (extents * vg.extentMb > maxMb) {
      stdout += `  Reducing COW size ${formatLvmMb(extents * vg.extentMb)} MiB down to maximum usable size ${formatLvmMb(maxMb)} MiB.\n`;
      extents = maxMb / vg.extentMb;
    }
  }
  if (state.lvs.some((lv) => lv.vg === vgName && lv.name === name)) {
    return fail(`  Logical Volume "${name}" already exists in volume group "${vgName}"\n`, 5, stdout);
  }
  const freeExtents = Math.floor(vgFreeMb(state, vg) / vg.extentMb);
  if (extents > freeExtents) {
    return fail(
      `  Volume group "${vgName}" has insufficient free space (${freeExtents} extents): ${extents} required.\n`,
      5,
      stdout,
    );
  }
  state.lvs.push({ vg: vgName, name, sizeMb: extents * vg.extentMb, origin: origin?.name });
  return ok(`${stdout}  Logical volume "${name}" created.\n`);
}

export function runLvremove(state: XenSimState, args: readonly string[]): SimResult {
  const targets: string[] = [];
  for (const a of args) {
    if (a === '-f' || a === '--force' || a === '-y' || a === '--yes') continue;
    if (a.startsWith('-')) return badCmdLine('lvremove', `unrecognized option '${a}'`);
    targets.push(a);
  }
  if (targets.length === 0) return fail('  No volume groups found.\n', 3);
  let stdout = '';
  let stderr = '';
  let exitCode = 0;
  for (const t of targets) {
    const slash = t.indexOf('/');
    if (slash < 0) return fail('  lvremove-sim: expected VG/NAME\n', 3);
    const vgName = t.slice(0, slash);
    const lvName = t.slice(slash + 1);
    if (!state.vgs.has(vgName)) {
      stderr += `  Volume group "${vgName}" not found\n  Cannot process volume group ${vgName}\n`;
      exitCode = 5;
      continue;
    }
    const lv = state.lvs.find((x) => x.vg === vgName && x.name === lvName);
    if (!lv) {
      stderr += `  Failed to find logical volume "${vgName}/${lvName}"\n`;
      exitCode = 5;
      continue;
    }
    // Removing an origin removes its snapshots first (-f answers LVM's question); any of
    // them open by a domain makes the whole removal fail.
    const victims = [...state.lvs.filter((x) => x.vg === vgName && x.origin === lvName), lv];
    const busy = victims.find((v) => state.domainsUsingLv(v).length > 0);
    if (busy) {
      stderr += `  Logical volume ${vgName}/${busy.name} in use.\n`;
      exitCode = 5;
      continue;
    }
    for (const v of victims) {
      state.lvs.splice(state.lvs.indexOf(v), 1);
      stdout += `  Logical volume "${v.name}" successfully removed.\n`;
    }
  }
  return { stdout, stderr, exitCode };
}
