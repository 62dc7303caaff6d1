import { posix } from 'node:path';
import { utils, type Attributes, type FileEntry, type SFTPWrapper } from 'ssh2';
import { FsError, MemoryFs, type MemoryFsNode } from './memory-fs.sim';

const { OPEN_MODE, STATUS_CODE } = utils.sftp;

/**
 * The server side of SFTP v3 over a host's MemoryFs: enough for Norm's uploads (OPEN, WRITE,
 * CLOSE, FSETSTAT/SETSTAT, STAT/LSTAT/FSTAT, RENAME, REMOVE, REALPATH, MKDIR/RMDIR,
 * OPENDIR/READDIR, READ). Status messages are OpenSSH sftp-server's. RENAME refuses an
 * existing target like sftp-server does (v3 rename is link+unlink); the
 * `posix-rename@openssh.com` extension replaces it.
 */
type Handle =
  { kind: 'file'; path: string; node: MemoryFsNode } | { kind: 'dir'; path: string; done: boolean };

const MESSAGES: Record<number, string> = {
  [STATUS_CODE.OK]: 'Success',
  [STATUS_CODE.EOF]: 'End of file',
  [STATUS_CODE.NO_SUCH_FILE]: 'No such file',
  [STATUS_CODE.PERMISSION_DENIED]: 'Permission denied',
  [STATUS_CODE.FAILURE]: 'Failure',
  [STATUS_CODE.OP_UNSUPPORTED]: 'Operation unsupported',
};

function attrsOf(n: MemoryFsNode): Attributes {
  return { mode: n.mode, uid: n.uid, gid: n.gid, size: n.data.length, atime: n.atime, mtime: n.mtime };
}

function longname(name: string, n: MemoryFsNode): string {
  const perms = n.mode & 0o777;
  const bits = ['r', 'w', 'x'];
  let s = n.type === 'dir' ? 'd' : '-';
  for (let i = 8; i >= 0; i--) s += perms & (1 << i) ? (bits[(8 - i) % 3] ?? '-') : '-';
  const date =
    new Date(n.mtime * 1000).toUTCString().slice(8, 16) +
    new Date(n.mtime * 1000).toISOString().slice(11, 16);
  return `${s}    1 root     root     ${String(n.data.length).padStart(8)} ${date} ${name}`;
}

export function attachSftpHandler(sftp: SFTPWrapper, fs: MemoryFs, homeDir: string): void {
  const handles = new Map<string, Handle>();
  let nextHandle = 1;
  const resolve = (p: string): string => MemoryFs.normalize(p === '' ? '.' : p, homeDir);
  const newHandle = (h: Handle): Buffer => {
    const buf = Buffer.alloc(4);
    buf.writeUInt32BE(nextHandle++);
    handles.set(buf.toString('hex'), h);
    return buf;
  };
  const status = (reqId: number, code: number): void => sftp.status(reqId, code, MESSAGES[code] ?? 'Failure');
  const fsStatus = (reqId: number, err: unknown): void => {
    if (err instanceof FsError)
      status(reqId, err.code === 'ENOENT' ? STATUS_CODE.NO_SUCH_FILE : STATUS_CODE.FAILURE);
    else status(reqId, STATUS_CODE.FAILURE);
  };
  const applyAttrs = (n: MemoryFsNode, attrs: Partial<Attributes>): void => {
    if (typeof attrs.mode === 'number') n.mode = (n.mode & ~0o7777) | (attrs.mode & 0o7777);
    if (typeof attrs.uid === 'number') n.uid = attrs.uid;
    if (typeof attrs.gid === 'number') n.gid = attrs.gid;
    if (typeof attrs.atime === 'number') n.atime = attrs.atime;
    if (typeof attrs.mtime === 'number') n.mtime = attrs.mtime;
    if (typeof attrs.size === 'number' && n.type === 'file') {
      const b = Buffer.alloc(attrs.size);
      n.data.copy(b, 0, 0, Math.min(attrs.size, n.data.length));
      n.data = b;
    }
  };

  sftp.on('OPEN', (reqId: number, filename: string, flags: number, attrs: Attributes) => {
    try {
      const path = resolve(filename);
      const node = fs.openFile(path, {
        create: (flags & OPEN_MODE.CREAT) !== 0,
        truncate: (flags & OPEN_MODE.TRUNC) !== 0,
        exclusive: (flags & OPEN_MODE.EXCL) !== 0,
        perm: typeof attrs.mode === 'number' ? attrs.mode & 0o7777 : 0o644,
      });
      sftp.handle(reqId, newHandle({ kind: 'file', path, node }));
    } catch (err) {
      fsStatus(reqId, err);
    }
  });
  sftp.on('WRITE', (reqId: number, handle: Buffer, offset: number, data: Buffer) => {
    const h = handles.get(handle.toString('hex'));
    if (h?.kind !== 'file') return status(reqId, STATUS_CODE.FAILURE);
    const end = offset + data.length;
    if (end > h.node.data.length) {
      const grown = Buffer.alloc(end);
      h.node.data.copy(grown);
      h.node.data = grown;
    }
    data.copy(h.node.data, offset);
    status(reqId, STATUS_CODE.OK);
  });
  sftp.on('READ', (reqId: number, handle: Buffer, offset: number, len: number) => {
    const h = handles.get(handle.toString('hex'));
    if (h?.kind !== 'file') return status(reqId, STATUS_CODE.FAILURE);
    if (offset >= h.node.data.length) return status(reqId, STATUS_CODE.EOF);
    sftp.data(reqId, h.node.data.subarray(offset, Math.min(offset + len, h.node.data.length)));
  });
  sftp.on('FSTAT', (reqId: number, handle: Buffer) => {
    const h = handles.get(handle.toString('hex'));
    const n = h ? fs.get(h.path) : undefined;
    if (!n) return status(reqId, STATUS_CODE.FAILURE);
    sftp.attrs(reqId, attrsOf(n));
  });
  sftp.on('FSETSTAT', (reqId: number, handle: Buffer, attrs: Attributes) => {
    const h = handles.get(handle.toString('hex'));
    const n = h ? fs.get(h.path) : undefined;
    if (!n) return status(reqId, STATUS_CODE.FAILURE);
    applyAttrs(n, attrs);
    status(reqId, STATUS_CODE.OK);
  });
  sftp.on('CLOSE', (reqId: number, handle: Buffer) => {
    if (!handles.delete(handle.toString('hex'))) return status(reqId, STATUS_CODE.FAILURE);
    status(reqId, STATUS_CODE.OK);
  });
  const stat = (reqId: number, path: string): void => {
    const n = fs.get(resolve(path));
    if (!n) return status(reqId, STATUS_CODE.NO_SUCH_FILE);
    sftp.attrs(reqId, attrsOf(n));
  };
  sftp.on('STAT', stat);
  sftp.on('LSTAT', stat);
  sftp.on('SETSTAT', (reqId: number, path: string, attrs: Attributes) => {
    const n = fs.get(resolve(path));
    if (!n) return status(reqId, STATUS_CODE.NO_SUCH_FILE);
    applyAttrs(n, attrs);
    status(reqId, STATUS_CODE.OK);
  });
  sftp.on('OPENDIR', (reqId: number, path: string) => {
    const p = resolve(path);
    const n = fs.get(p);
    if (!n) return status(reqId, STATUS_CODE.NO_SUCH_FILE);
    if (n.type !== 'dir') return status(reqId, STATUS_CODE.FAILURE);
    sftp.handle(reqId, newHandle({ kind: 'dir', path: p, done: false }));
  });
  sftp.on('READDIR', (reqId: number, handle: Buffer) => {
    const h = handles.get(handle.toString('hex'));
    if (h?.kind !== 'dir') return status(reqId, STATUS_CODE.FAILURE);
    if (h.done) return status(reqId, STATUS_CODE.EOF);
    h.done = true;
    const entries: FileEntry[] = [];
    const self = fs.get(h.path);
    const parent = fs.get(posix.dirname(h.path));
    // sftp-server lists . and .. like readdir(3) does.
    if (self) entries.push({ filename: '.', longname: longname('.', self), attrs: attrsOf(self) });
    if (parent) entries.push({ filename: '..', longname: longname('..', parent), attrs: attrsOf(parent) });
    for (const name of fs.readdir(h.path)) {
      const n = fs.get(posix.join(h.path, name));
      if (n) entries.push({ filename: name, longname: longname(name, n), attrs: attrsOf(n) });
    }
    sftp.name(reqId, entries);
  });
  sftp.on('REMOVE', (reqId: number, path: string) => {
    try {
      fs.unlink(resolve(path));
      status(reqId, STATUS_CODE.OK);
    } catch (err) {
      fsStatus(reqId, err);
    }
  });
  sftp.on('RMDIR', (reqId: number, path: string) => {
    try {
      fs.rmdir(resolve(path));
      status(reqId, STATUS_CODE.OK);
    } catch (err) {
      fsStatus(reqId, err);
    }
  });
  sftp.on('MKDIR', (reqId: number, path: string, attrs: Attributes) => {
    try {
      fs.mkdir(resolve(path), typeof attrs.mode === 'number' ? attrs.mode & 0o7777 : 0o755);
      status(reqId, STATUS_CODE.OK);
    } catch (err) {
      fsStatus(reqId, err);
    }
  });
  sftp.on('RENAME', (reqId: number, oldPath: string, newPath: string) => {
    try {
      if (fs.exists(resolve(newPath))) return status(reqId, STATUS_CODE.FAILURE);
      fs.rename(resolve(oldPath), resolve(newPath));
      status(reqId, STATUS_CODE.OK);
    } catch (err) {
      fsStatus(reqId, err);
    }
  });
  sftp.on('EXTENDED', (reqId: number, extName: string, extData: Buffer) => {
    if (extName !== 'posix-rename@openssh.com') return status(reqId, STATUS_CODE.OP_UNSUPPORTED);
    try {
      const oldLen = extData.readUInt32BE(0);
      const oldPath = extData.subarray(4, 4 + oldLen).toString('utf8');
      const newLen = extData.readUInt32BE(4 + oldLen);
      const newPath = extData.subarray(8 + oldLen, 8 + oldLen + newLen).toString('utf8');
      fs.rename(resolve(oldPath), resolve(newPath));
      status(reqId, STATUS_CODE.OK);
    } catch (err) {
      fsStatus(reqId, err);
    }
  });
  sftp.on('REALPATH', (reqId: number, path: string) => {
    const p = resolve(path);
    const n = fs.get(p);
    sftp.name(reqId, [
      {
        filename: p,
        longname: p,
        attrs: n ? attrsOf(n) : { mode: 0, uid: 0, gid: 0, size: 0, atime: 0, mtime: 0 },
      },
    ]);
  });
  sftp.on('READLINK', (reqId: number) => status(reqId, STATUS_CODE.OP_UNSUPPORTED));
  sftp.on('SYMLINK', (reqId: number) => status(reqId, STATUS_CODE.OP_UNSUPPORTED));
}
