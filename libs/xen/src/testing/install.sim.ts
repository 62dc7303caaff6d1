import { type SimResult } from './xen-sim.state';

/** Where `install` copies: the host's filesystem as the simulated host sees it. */
export interface SimFileInstaller {
  /** Copies `source` over `destination` (both absolute) owned by root with `mode`. */
  installRootOwned(
    source: string,
    destination: string,
    mode: number,
  ):
    | { ok: true }
    | { ok: false; side: 'source' | 'destination'; error: 'ENOENT' | 'EISDIR' | 'ENOTDIR' | 'EACCES' };
}

const ERRNO_TEXT = {
  ENOENT: 'No such file or directory',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  EACCES: 'Permission denied',
} as const;

/**
 * coreutils `install`, only the form Norm issues (`install -o root -g root -m MODE SRC DEST`,
 * libs/xen file.commands.ts); anything else is refused rather than half-emulated. Messages and
 * exit codes are coreutils 9.1's. `asRoot` false models the login user without sudo: the
 * chown is refused as on a real host.
 */
export function runInstall(files: SimFileInstaller, args: readonly string[], asRoot: boolean): SimResult {
  const fail = (stderr: string): SimResult => ({ stdout: '', stderr: `install: ${stderr}\n`, exitCode: 1 });
  const [o, owner, g, group, m, mode, source, destination, ...rest] = args;
  if (
    o !== '-o' ||
    g !== '-g' ||
    m !== '-m' ||
    owner !== 'root' ||
    group !== 'root' ||
    mode === undefined ||
    !/^[0-7]{3,4}$/.test(mode) ||
    source === undefined ||
    destination === undefined ||
    rest.length > 0
  ) {
    return fail(`the simulator only implements 'install -o root -g root -m MODE SRC DEST'`);
  }
  if (!source.startsWith('/') || !destination.startsWith('/'))
    return fail('the simulator only implements absolute paths');
  // Checked first so the simulator never leaves a copy owned by the login user behind.
  if (!asRoot) return fail(`cannot change ownership of '${destination}': Operation not permitted`);
  const result = files.installRootOwned(source, destination, parseInt(mode, 8));
  if (result.ok) return { stdout: '', stderr: '', exitCode: 0 };
  return result.side === 'source'
    ? fail(`cannot stat '${source}': ${ERRNO_TEXT[result.error]}`)
    : fail(`cannot create regular file '${destination}': ${ERRNO_TEXT[result.error]}`);
}
