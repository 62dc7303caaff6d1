import { posix } from 'node:path';
import { type SimFileInstaller } from './install.sim';
import { type SimFileReader } from './xen-sim.state';

/**
 * The filesystem of a simulated host as far as Norm can see it: what SFTP writes and what
 * `xl create` reads. POSIX-ish semantics (ENOENT, EEXIST, ENOTDIR) because the SFTP layer
 * maps them to SFTP status codes the client reacts to.
 */
export interface MemoryFsNode {
  type: 'file' | 'dir';
  data: Buffer;
  mode: number;
  uid: number;
  gid: number;
  atime: number;
  mtime: number;
}

export class FsError extends Error {
  constructor(
    readonly code: 'ENOENT' | 'EEXIST' | 'ENOTDIR' | 'EISDIR' | 'ENOTEMPTY',
    readonly path: string,
  ) {
    super(`${code}: ${path}`);
  }
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

export class MemoryFs implements SimFileReader, SimFileInstaller {
  private readonly nodes = new Map<string, MemoryFsNode>();

  constructor(private readonly nowSeconds: () => number = () => Math.floor(Date.now() / 1000)) {
    this.nodes.set('/', this.node('dir', 0o755));
  }

  static normalize(path: string, cwd = '/'): string {
    const abs = posix.isAbsolute(path) ? path : posix.join(cwd, path);
    const norm = posix.normalize(abs);
    return norm.length > 1 && norm.endsWith('/') ? norm.slice(0, -1) : norm;
  }

  private node(type: 'file' | 'dir', perm: number): MemoryFsNode {
    const t = this.nowSeconds();
    return {
      type,
      data: Buffer.alloc(0),
      mode: (type === 'dir' ? S_IFDIR : S_IFREG) | perm,
      uid: 0,
      gid: 0,
      atime: t,
      mtime: t,
    };
  }

  get(path: string): MemoryFsNode | undefined {
    return this.nodes.get(MemoryFs.normalize(path));
  }

  private parentDir(path: string): MemoryFsNode {
    const parent = this.nodes.get(posix.dirname(path));
    if (!parent) throw new FsError('ENOENT', path);
    if (parent.type !== 'dir') throw new FsError('ENOTDIR', path);
    return parent;
  }

  mkdirp(path: string, perm = 0o755): void {
    const p = MemoryFs.normalize(path);
    let cur = '';
    for (const part of p.split('/').filter(Boolean)) {
      cur += `/${part}`;
      const existing = this.nodes.get(cur);
      if (!existing) this.nodes.set(cur, this.node('dir', perm));
      else if (existing.type !== 'dir') throw new FsError('ENOTDIR', cur);
    }
  }

  mkdir(path: string, perm = 0o755): void {
    const p = MemoryFs.normalize(path);
    this.parentDir(p);
    if (this.nodes.has(p)) throw new FsError('EEXIST', p);
    this.nodes.set(p, this.node('dir', perm));
  }

  rmdir(path: string): void {
    const p = MemoryFs.normalize(path);
    const n = this.nodes.get(p);
    if (!n) throw new FsError('ENOENT', p);
    if (n.type !== 'dir') throw new FsError('ENOTDIR', p);
    if (this.readdir(p).length > 0) throw new FsError('ENOTEMPTY', p);
    this.nodes.delete(p);
  }

  /** Opens (and optionally creates/truncates) a regular file, returning its node. */
  openFile(
    path: string,
    opts: { create: boolean; truncate: boolean; exclusive: boolean; perm?: number },
  ): MemoryFsNode {
    const p = MemoryFs.normalize(path);
    const existing = this.nodes.get(p);
    if (existing) {
      if (existing.type === 'dir') throw new FsError('EISDIR', p);
      if (opts.create && opts.exclusive) throw new FsError('EEXIST', p);
      if (opts.truncate) {
        existing.data = Buffer.alloc(0);
        existing.mtime = this.nowSeconds();
      }
      return existing;
    }
    if (!opts.create) throw new FsError('ENOENT', p);
    this.parentDir(p);
    const n = this.node('file', opts.perm ?? 0o644);
    this.nodes.set(p, n);
    return n;
  }

  writeFile(path: string, data: Buffer | string, perm = 0o644): void {
    const n = this.openFile(path, { create: true, truncate: true, exclusive: false, perm });
    n.data = Buffer.from(data);
  }

  installFile(
    source: string,
    destination: string,
    mode: number,
    uid: number,
  ): ReturnType<SimFileInstaller['installFile']> {
    let data: Buffer;
    try {
      data = Buffer.from(this.readFile(source));
    } catch (err) {
      if (err instanceof FsError && (err.code === 'ENOENT' || err.code === 'EISDIR'))
        return { ok: false, side: 'source', error: err.code };
      throw err;
    }
    try {
      // install unlinks and recreates: the new node is uid's whatever owned the old one.
      if (this.get(destination)?.type === 'file') this.unlink(destination);
      const n = this.openFile(destination, { create: true, truncate: true, exclusive: true, perm: mode });
      n.data = data;
      n.uid = uid;
      n.gid = uid;
      n.mode = (n.mode & ~0o7777) | mode;
      return { ok: true };
    } catch (err) {
      if (
        err instanceof FsError &&
        (err.code === 'ENOENT' || err.code === 'EISDIR' || err.code === 'ENOTDIR')
      )
        return { ok: false, side: 'destination', error: err.code };
      throw err;
    }
  }

  readFile(path: string): Buffer {
    const p = MemoryFs.normalize(path);
    const n = this.nodes.get(p);
    if (!n) throw new FsError('ENOENT', p);
    if (n.type === 'dir') throw new FsError('EISDIR', p);
    return n.data;
  }

  exists(path: string): boolean {
    return this.nodes.has(MemoryFs.normalize(path));
  }

  unlink(path: string): void {
    const p = MemoryFs.normalize(path);
    const n = this.nodes.get(p);
    if (!n) throw new FsError('ENOENT', p);
    if (n.type === 'dir') throw new FsError('EISDIR', p);
    this.nodes.delete(p);
  }

  /** rename(2) semantics for files: an existing target file is replaced atomically. */
  rename(from: string, to: string): void {
    const a = MemoryFs.normalize(from);
    const b = MemoryFs.normalize(to);
    const n = this.nodes.get(a);
    if (!n) throw new FsError('ENOENT', a);
    this.parentDir(b);
    const target = this.nodes.get(b);
    if (target?.type === 'dir') throw new FsError('EISDIR', b);
    if (n.type === 'dir') {
      for (const [key, child] of [...this.nodes]) {
        if (key.startsWith(`${a}/`)) {
          this.nodes.delete(key);
          this.nodes.set(b + key.slice(a.length), child);
        }
      }
    }
    this.nodes.delete(a);
    this.nodes.set(b, n);
  }

  readdir(path: string): string[] {
    const p = MemoryFs.normalize(path);
    const n = this.nodes.get(p);
    if (!n) throw new FsError('ENOENT', p);
    if (n.type !== 'dir') throw new FsError('ENOTDIR', p);
    const prefix = p === '/' ? '/' : `${p}/`;
    const names: string[] = [];
    for (const key of this.nodes.keys()) {
      if (key !== p && key.startsWith(prefix) && !key.slice(prefix.length).includes('/'))
        names.push(key.slice(prefix.length));
    }
    return names.sort();
  }

  /** Files under a directory with their contents; for test assertions. */
  listFiles(dir: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of this.readdir(dir)) {
      const n = this.get(posix.join(dir, name));
      if (n?.type === 'file') out[name] = n.data.toString('utf8');
    }
    return out;
  }

  readText(path: string, cwd: string): { ok: true; text: string } | { ok: false; error: string } {
    try {
      return { ok: true, text: this.readFile(MemoryFs.normalize(path, cwd)).toString('utf8') };
    } catch (err) {
      if (err instanceof FsError) {
        return {
          ok: false,
          error:
            err.code === 'EISDIR'
              ? 'Is a directory'
              : err.code === 'ENOTDIR'
                ? 'Not a directory'
                : 'No such file or directory',
        };
      }
      throw err;
    }
  }
}
