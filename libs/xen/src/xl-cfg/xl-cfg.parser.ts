import { DomainError } from '@norm/core';

/**
 * The xl.cfg language as libxlu reads it (XL.md §4.1): `key = value` or `key += value`
 * statements ended by a newline or `;`; values are strings ('…' or "…", C escapes), numbers
 * (kept as their text, like libxlu, which stores both as string atoms) or lists `[ … ]` that
 * may span lines, nest, and end with a comma; `#` comments. The same key set twice keeps the
 * last value. Errors carry libxlu's wording after its `FILE:` prefix: `LINE: config parsing
 * error near \`TOKEN': syntax error` (or `lexical error`), so the simulator can print them as xl.
 */
export type XlCfgValue = string | XlCfgValue[];

type TokenKind = 'ident' | 'number' | 'string' | '=' | '+=' | ',' | '[' | ']' | ';' | 'newline' | 'eof';

interface Token {
  kind: TokenKind;
  /** Dequoted text for strings, source text otherwise. */
  text: string;
  /** What the token looked like in the file, for error messages. */
  source: string;
  line: number;
}

function cfgError(
  line: number,
  near: string,
  what: 'syntax error' | 'lexical error',
  reason?: string,
): DomainError {
  const shown = near === '\n' ? '' : near;
  return new DomainError('ParseError', `${line}: config parsing error near \`${shown}': ${what}`, {
    format: 'xl.cfg',
    line,
    near: shown.slice(0, 80),
    ...(reason !== undefined ? { reason } : {}),
  });
}

const IDENT = /[a-z][._0-9a-z]*/y;
const NUMBER = /[0-9][0-9a-fx]*/y;

function dequote(body: string, line: number, source: string): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i] ?? '';
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = body[++i] ?? '';
    let code: number | undefined;
    if (e === 'n') out += '\n';
    else if (e === 't') out += '\t';
    else if (e === 'r') out += '\r';
    else if (e === 'x') {
      const hex = /^[0-9a-fA-F]{2}/.exec(body.slice(i + 1));
      if (!hex) throw cfgError(line, source, 'lexical error', 'bad \\x escape (two hex digits needed)');
      code = parseInt(hex[0], 16);
      i += 2;
    } else if (/[0-7]/.test(e)) {
      const oct = /^[0-7]{1,3}/.exec(body.slice(i)) ?? ['0'];
      code = parseInt(oct[0], 8);
      i += oct[0].length - 1;
    } else {
      // `\\`, `\'`, `\"`, and any other escaped character stand for themselves.
      out += e;
    }
    if (code !== undefined) {
      // A NUL would end the C string libxl gets, silently truncating the value.
      if (code === 0 || code > 0xff) throw cfgError(line, source, 'lexical error', 'escape out of range');
      out += String.fromCharCode(code);
    }
  }
  return out;
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  let i = 0;
  const push = (kind: TokenKind, textValue: string, source: string): void => {
    tokens.push({ kind, text: textValue, source, line });
  };
  while (i < text.length) {
    const c = text[i] ?? '';
    // `\r` of CRLF files is taken as blank space; libxlu would call it a lexical error.
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (c === '\n') {
      push('newline', '\n', '\n');
      line++;
      i++;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < text.length && text[j] !== c) {
        if (text[j] === '\n')
          throw cfgError(line, text.slice(i, j), 'lexical error', 'newline inside a string');
        if (text[j] === '\\') {
          if (text[j + 1] === '\n' || j + 1 >= text.length) {
            throw cfgError(line, text.slice(i, j + 1), 'lexical error', 'unterminated string');
          }
          j++;
        }
        j++;
      }
      if (j >= text.length) throw cfgError(line, text.slice(i, j), 'lexical error', 'unterminated string');
      const source = text.slice(i, j + 1);
      push('string', dequote(text.slice(i + 1, j), line, source), source);
      i = j + 1;
    } else if (c === '+' && text[i + 1] === '=') {
      push('+=', '+=', '+=');
      i += 2;
    } else if (c === '=' || c === ',' || c === '[' || c === ']' || c === ';') {
      push(c, c, c);
      i++;
    } else {
      IDENT.lastIndex = i;
      NUMBER.lastIndex = i;
      const ident = IDENT.exec(text);
      const num = ident ? null : NUMBER.exec(text);
      const m = ident ?? num;
      if (!m) throw cfgError(line, c, 'lexical error');
      push(ident ? 'ident' : 'number', m[0], m[0]);
      i += m[0].length;
    }
  }
  push('eof', '', '');
  return tokens;
}

class Parser {
  private pos = 0;
  readonly values = new Map<string, XlCfgValue>();

  constructor(private readonly tokens: Token[]) {}

  private peek(): Token {
    // tokenize always ends with eof, and the parser never reads past it.
    return (
      this.tokens[this.pos] ??
      this.tokens[this.tokens.length - 1] ?? { kind: 'eof', text: '', source: '', line: 1 }
    );
  }

  private next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.pos++;
    return t;
  }

  private fail(t: Token): never {
    throw cfgError(t.line, t.source, 'syntax error');
  }

  private skipNewlines(): void {
    while (this.peek().kind === 'newline') this.next();
  }

  parseFile(): Map<string, XlCfgValue> {
    for (;;) {
      const t = this.next();
      if (t.kind === 'eof') return this.values;
      if (t.kind === 'newline' || t.kind === ';') continue;
      if (t.kind !== 'ident') this.fail(t);
      const op = this.next();
      if (op.kind !== '=' && op.kind !== '+=') this.fail(op);
      const value = this.parseValue();
      const end = this.next();
      if (end.kind !== 'newline' && end.kind !== ';' && end.kind !== 'eof') this.fail(end);
      this.store(t, op.kind, value);
      if (end.kind === 'eof') return this.values;
    }
  }

  private store(key: Token, op: '=' | '+=', value: XlCfgValue): void {
    const old = this.values.get(key.text);
    if (op === '=' || old === undefined) {
      this.values.set(key.text, value);
    } else if (typeof old === 'string' && typeof value === 'string') {
      this.values.set(key.text, old + value);
    } else if (Array.isArray(old) && Array.isArray(value)) {
      this.values.set(key.text, [...old, ...value]);
    } else {
      throw new DomainError(
        'ParseError',
        `${key.line}: config parsing error: can't add a list and a string (\`${key.text}')`,
        {
          format: 'xl.cfg',
          line: key.line,
          near: key.text,
        },
      );
    }
  }

  private parseValue(): XlCfgValue {
    const t = this.next();
    if (t.kind === 'string' || t.kind === 'number') return t.text;
    if (t.kind !== '[') this.fail(t);
    const items: XlCfgValue[] = [];
    this.skipNewlines();
    if (this.peek().kind === ']') {
      this.next();
      return items;
    }
    for (;;) {
      items.push(this.parseValue());
      this.skipNewlines();
      const sep = this.next();
      if (sep.kind === ']') return items;
      if (sep.kind !== ',') this.fail(sep);
      this.skipNewlines();
      // A trailing comma before the closing bracket.
      if (this.peek().kind === ']') {
        this.next();
        return items;
      }
    }
  }
}

export function parseXlCfg(text: string): Map<string, XlCfgValue> {
  return new Parser(tokenize(text)).parseFile();
}
