/**
 * JSON exactly as yajl's beautifier prints it (xl 4.17 is built with yajl): 4-space indent,
 * `"key": value`, every array element on its own line, and an empty object or array as the
 * opening bracket, an empty line, then the indented closing bracket. The real xl output is
 * what Norm's parser meets, so the simulator reproduces the shape, not just the data.
 */
export type YajlValue = string | number | boolean | null | YajlValue[] | { [key: string]: YajlValue };

function indent(depth: number): string {
  return '    '.repeat(depth);
}

function encodeString(s: string): string {
  // yajl escapes only what JSON requires (it does not escape '/' unless asked to).
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (code < 0x20) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

function render(value: YajlValue, depth: number): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return encodeString(value);
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (Array.isArray(value)) {
    const items = value.map((v) => indent(depth + 1) + render(v, depth + 1));
    return `[\n${items.join(',\n')}\n${indent(depth)}]`;
  }
  const items = Object.entries(value).map(
    ([k, v]) => `${indent(depth + 1)}${encodeString(k)}: ${render(v, depth + 1)}`,
  );
  return `{\n${items.join(',\n')}\n${indent(depth)}}`;
}

/** The generator buffer for a top-level value, including yajl's final newline. */
export function yajlBeautify(value: YajlValue): string {
  return `${render(value, 0)}\n`;
}
