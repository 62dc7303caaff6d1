import { type SimResult } from './xen-sim.state';

/** Where `install` copies: the host's filesystem as the simulated host sees it. */
export interface SimFileInstaller {
  /** Copies `source` over `destination` (both absolute), owned by `uid` with `mode`. */
  installFile(
    source: string,
    destination: string,
    mode: number,
    uid: number,
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
 * exit codes are coreutils 9.1's, as the xen-real lab printed them. `asRoot` false models the
 * login user without sudo: as on the real host, the copy is made (owned by that user, with
 * the mode) before the chown is refused, so a forgotten sudo leaves a user-readable file.
 */
export const SIM_LOGIN_UID = 1000;

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
  const result = files.installFile(source, destination, parseInt(mode, 8), asRoot ? 0 : SIM_LOGIN_UID);
  if (result.ok)
    return asRoot
      ? { stdout: '', stderr: '', exitCode: 0 }
      : fail(`cannot change ownership of '${destination}': Operation not permitted`);
  return result.side === 'source'
    ? fail(`cannot stat '${source}': ${ERRNO_TEXT[result.error]}`)
    : fail(`cannot create regular file '${destination}': ${ERRNO_TEXT[result.error]}`);
}
