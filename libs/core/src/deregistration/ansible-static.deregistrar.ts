import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type Deregistrar, type DeregistrationEvent } from './deregistrar.port';

/**
 * Removes a host from an INI inventory's text: every host line (outside `:vars` and
 * `:children` sections) whose first word is one of `names`. Comments, blank lines, groups,
 * variables and every other host stay byte for byte, so an operator's file stays theirs.
 */
export function removeHostFromIni(text: string, names: readonly string[]): { text: string; removed: number } {
  const wanted = new Set(names.filter(Boolean));
  let section: 'hosts' | 'vars' | 'children' = 'hosts';
  let removed = 0;
  const lines = text.split('\n').filter((line) => {
    const t = line.trim();
    const header = /^\[([^\]]+)\]$/.exec(t);
    if (header) {
      const name = header[1] ?? '';
      section = name.endsWith(':vars') ? 'vars' : name.endsWith(':children') ? 'children' : 'hosts';
      return true;
    }
    if (section !== 'hosts' || t === '' || t.startsWith('#') || t.startsWith(';')) return true;
    const host = t.split(/\s+/)[0] ?? '';
    if (wanted.has(host)) {
      removed++;
      return false;
    }
    return true;
  });
  return { text: lines.join('\n'), removed };
}

/** Reading and atomically replacing one text file; a port so tests may use a temp dir or memory. */
export interface TextFiles {
  read(path: string): Promise<string | null>;
  /** Write beside the file, fsync, rename over it: a reader sees the old or the new file, never half. */
  replace(path: string, text: string): Promise<void>;
}

export const nodeTextFiles: TextFiles = {
  async read(path) {
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  },
  async replace(path, text) {
    const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
    const handle = await open(tmp, 'wx', 0o644);
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  },
};

/**
 * Ansible: Norm's dynamic inventory already stops listing a decommissioned instance; this
 * target also rewrites an operator's static INI inventory, matching the instance's name, its
 * domain name or its IP as the host word. Not listed (or no file) is already absent.
 */
export class AnsibleStaticInventoryDeregistrar implements Deregistrar {
  readonly name: string;

  constructor(
    private readonly options: { name: string; path: string },
    private readonly files: TextFiles = nodeTextFiles,
  ) {
    this.name = `ansible:${options.name}`;
  }

  async deregister(event: DeregistrationEvent): Promise<{ outcome: 'removed' | 'absent' }> {
    const text = await this.files.read(this.options.path);
    if (text === null) return { outcome: 'absent' };
    const names = [event.name, event.domainName, ...(event.ip ? [event.ip] : [])];
    const result = removeHostFromIni(text, names);
    if (result.removed === 0) return { outcome: 'absent' };
    await this.files.replace(this.options.path, result.text);
    return { outcome: 'removed' };
  }

  async testConnection(): Promise<{ ok: boolean; detail: string }> {
    try {
      const text = await this.files.read(this.options.path);
      return { ok: text !== null, detail: text === null ? 'file not found' : 'readable' };
    } catch (err) {
      return { ok: false, detail: err instanceof Error ? err.message : String(err) };
    }
  }

  describe(): Record<string, unknown> {
    return { kind: 'ansible', name: this.name, path: this.options.path, format: 'ini' };
  }
}
