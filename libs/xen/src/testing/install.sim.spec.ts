import { describe, expect, it } from 'vitest';
import { installRootOnlyArgv } from '../commands/file.commands';
import { SimulatedXenHost } from './xen-host.sim';

const STAGED = '/var/lib/norm/domains/.web1.cfg.staged';
const FINAL = '/var/lib/norm/domains/web1.cfg';

describe('simulated install (placing an uploaded config root-only)', () => {
  it('copies the staged file over the final path as root:root with the mode, through sudo', async () => {
    const h = new SimulatedXenHost({ requireSudo: true });
    h.fs.writeFile(STAGED, 'name = "web1"\n', 0o600);
    h.fs.get(STAGED)!.uid = 1000;
    h.fs.writeFile(FINAL, 'old\n', 0o644);
    h.fs.get(FINAL)!.uid = 1000;
    const r = await h.exec(['sudo', '-n', ...installRootOnlyArgv(STAGED, FINAL)]);
    expect(r).toEqual({ stdout: '', stderr: '', exitCode: 0 });
    const node = h.fs.get(FINAL)!;
    expect({ uid: node.uid, gid: node.gid, perm: node.mode & 0o7777 }).toEqual({
      uid: 0,
      gid: 0,
      perm: 0o600,
    });
    expect(h.fs.readFile(FINAL).toString()).toBe('name = "web1"\n');
  });

  // Pinned against the xen-real lab (coreutils 9.1): without sudo the copy is made, owned by the
  // login user, before the chown fails, so a forgotten sudo leaves a user-owned config behind.
  it('without sudo copies as the login user, then refuses the chown, as the real host does', async () => {
    const h = new SimulatedXenHost({ requireSudo: true });
    h.fs.writeFile(STAGED, 'x\n', 0o600);
    expect(await h.exec([...installRootOnlyArgv(STAGED, FINAL)])).toEqual({
      stdout: '',
      stderr: `install: cannot change ownership of '${FINAL}': Operation not permitted\n`,
      exitCode: 1,
    });
    const node = h.fs.get(FINAL)!;
    expect({ uid: node.uid, perm: node.mode & 0o777 }).toEqual({ uid: 1000, perm: 0o600 });
  });

  it('reports a missing source or destination directory as coreutils does', async () => {
    const h = new SimulatedXenHost();
    expect(await h.exec([...installRootOnlyArgv(STAGED, FINAL)])).toMatchObject({
      stderr: `install: cannot stat '${STAGED}': No such file or directory\n`,
      exitCode: 1,
    });
    h.fs.writeFile(STAGED, 'x\n');
    expect(await h.exec([...installRootOnlyArgv(STAGED, '/nonexistent/web1.cfg')])).toMatchObject({
      stderr: `install: cannot create regular file '/nonexistent/web1.cfg': No such file or directory\n`,
      exitCode: 1,
    });
  });

  it('implements only the form Norm issues', async () => {
    const h = new SimulatedXenHost();
    h.fs.writeFile(STAGED, 'x\n');
    expect((await h.exec(['install', '-m', '0644', STAGED, FINAL])).exitCode).toBe(1);
    expect(h.fs.get(FINAL)).toBeUndefined();
  });
});
