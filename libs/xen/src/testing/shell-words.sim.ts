/**
 * Splits an SSH exec command line into words the way dash would for a simple command, so
 * the in-process server exercises the client's quoting for real. Anything a shell would
 * interpret (operators, expansions, globs, comments, redirections) is refused with an error
 * instead of being mis-split, because silently passing `;` or `$(...)` through would hide
 * exactly the quoting bugs this simulator exists to catch.
 */
export type ShellSplit =
  { ok: true; words: string[]; env: Record<string, string> } | { ok: false; error: string };

const OPERATORS = new Set([';', '|', '&', '(', ')', '<', '>', '\n']);
const EXPANSIONS = new Set(['$', '`']);
const GLOBS = new Set(['*', '?', '[']);

export function splitShellWords(line: string): ShellSplit {
  const words: Array<{ text: string; quotedFrom: number }> = [];
  let cur = '';
  let inWord = false;
  // Offset in the current word where quoting first happened: `'A=b' cmd` runs a command
  // named `A=b`, only an unquoted `NAME=` prefix makes an assignment.
  let quotedFrom = Infinity;
  let i = 0;
  const refuse = (what: string): ShellSplit => ({
    ok: false,
    error: `unsupported shell syntax ${JSON.stringify(what)} at offset ${i}`,
  });
  while (i < line.length) {
    const c = line[i] ?? '';
    if (c === ' ' || c === '\t') {
      if (inWord) {
        words.push({ text: cur, quotedFrom });
        cur = '';
        inWord = false;
        quotedFrom = Infinity;
      }
      i++;
      continue;
    }
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) return { ok: false, error: 'Syntax error: Unterminated quoted string' };
      quotedFrom = Math.min(quotedFrom, cur.length);
      cur += line.slice(i + 1, end);
      inWord = true;
      i = end + 1;
      continue;
    }
    if (c === '"') {
      quotedFrom = Math.min(quotedFrom, cur.length);
      i++;
      let closed = false;
      while (i < line.length) {
        const d = line[i] ?? '';
        if (d === '"') {
          closed = true;
          i++;
          break;
        }
        if (d === '\\') {
          const n = line[i + 1];
          if (n === undefined) break;
          // Inside double quotes a backslash only escapes $ ` " \ and newline.
          if (n === '$' || n === '`' || n === '"' || n === '\\') cur += n;
          else if (n !== '\n') cur += `\\${n}`;
          i += 2;
          continue;
        }
        if (EXPANSIONS.has(d)) return refuse(d);
        cur += d;
        i++;
      }
      if (!closed) return { ok: false, error: 'Syntax error: Unterminated quoted string' };
      inWord = true;
      continue;
    }
    if (c === '\\') {
      const n = line[i + 1];
      if (n === undefined) {
        cur += '\\';
        inWord = true;
        i++;
        continue;
      }
      // Backslash-newline is a line continuation and disappears.
      if (n !== '\n') {
        quotedFrom = Math.min(quotedFrom, cur.length);
        cur += n;
        inWord = true;
      }
      i += 2;
      continue;
    }
    if (OPERATORS.has(c) || EXPANSIONS.has(c) || GLOBS.has(c)) return refuse(c);
    if (!inWord && (c === '#' || c === '~')) return refuse(c);
    cur += c;
    inWord = true;
    i++;
  }
  if (inWord) words.push({ text: cur, quotedFrom });
  // Leading NAME=value words are variable assignments for the command, not arguments.
  const env: Record<string, string> = {};
  const assignment = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s;
  let first = 0;
  for (; first < words.length; first++) {
    const w = words[first];
    const m = w ? assignment.exec(w.text) : null;
    if (!w || !m?.[1] || w.text.indexOf('=') >= w.quotedFrom) break;
    env[m[1]] = m[2] ?? '';
  }
  return { ok: true, words: words.slice(first).map((w) => w.text), env };
}
