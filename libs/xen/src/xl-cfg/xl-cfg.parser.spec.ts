import { describe, expect, it } from 'vitest';
import { parseXlCfg } from './xl-cfg.parser';

function parsed(text: string): Record<string, unknown> {
  return Object.fromEntries(parseXlCfg(text));
}

function parseFailure(text: string): { message: string; details: Record<string, unknown> } {
  try {
    parseXlCfg(text);
  } catch (err) {
    expect(err).toMatchObject({ code: 'ParseError' });
    return err as { message: string; details: Record<string, unknown> };
  }
  throw new Error('expected a parse error');
}

describe('parseXlCfg', () => {
  it('reads key = value statements with strings, numbers, comments and blank lines', () => {
    const text = [
      '# a comment',
      '',
      'name = "web-1"   # trailing comment',
      "kernel = '/boot/vmlinuz'",
      'memory = 2048',
      'vcpus=2',
      "maxmem = '4096'",
      'cpu_weight = 0x100',
      'extra.key = "dotted keys"',
    ].join('\n');
    expect(parsed(text)).toEqual({
      name: 'web-1',
      kernel: '/boot/vmlinuz',
      memory: '2048',
      vcpus: '2',
      maxmem: '4096',
      cpu_weight: '0x100',
      'extra.key': 'dotted keys',
    });
  });

  it('accepts ; as a separator and a last statement without a newline', () => {
    expect(parsed('a = 1; b = "x";c=2')).toEqual({ a: '1', b: 'x', c: '2' });
  });

  it('reads lists over several lines, nested, empty, and with a trailing comma', () => {
    const text = `disk = [
      'format=raw, vdev=xvda, access=rw, target=/dev/vg0/a',

      "vdev=xvdb, target=/dev/vg0/b",
    ]
    vif = []
    nested = [ [ 1, 2 ], [ ], 'x' ]
    `;
    expect(parsed(text)).toEqual({
      disk: ['format=raw, vdev=xvda, access=rw, target=/dev/vg0/a', 'vdev=xvdb, target=/dev/vg0/b'],
      vif: [],
      nested: [['1', '2'], [], 'x'],
    });
  });

  it('applies C escapes in both quote styles', () => {
    const text = String.raw`a = "q\"b\\s\'n\nt\tx\x41o\101" ` + '\n' + String.raw`b = 'it\'s \"fine\"'`;
    expect(parsed(text)).toEqual({ a: 'q"b\\s\'n\nt\txAoA', b: 'it\'s "fine"' });
  });

  it('appends with += (strings concatenate, lists extend) and keeps the last of repeated keys', () => {
    const text =
      'extra = "a"\nextra += " b"\nvif = [ "x" ]\nvif += [ "y" ]\nfresh += "z"\nname = "one"\nname = "two"\n';
    expect(parsed(text)).toEqual({ extra: 'a b', vif: ['x', 'y'], fresh: 'z', name: 'two' });
  });

  it('keeps keys such as constructor or tostring as plain keys', () => {
    expect(parseXlCfg('constructor += "x"\n').get('constructor')).toBe('x');
  });

  it('accepts CRLF line ends', () => {
    expect(parsed('name = "a"\r\nmemory = 1\r\n')).toEqual({ name: 'a', memory: '1' });
  });

  it.each([
    ['memory = -1', 1, '-', 'lexical error'],
    ['name = "a"\nMemory = 1', 2, 'M', 'lexical error'],
    ['name = "a"\nx = (1)', 2, '(', 'lexical error'],
    ['name = "unterminated\n', 1, '"unterminated', 'lexical error'],
    ['a = 1\nb = 2 3\n', 2, '3', 'syntax error'],
    ['a = [ 1,, 2 ]', 1, ',', 'syntax error'],
    ['a = [ , ]', 1, ',', 'syntax error'],
    ['a = [ 1 2 ]', 1, '2', 'syntax error'],
    ['a\n', 1, '', 'syntax error'],
    ['= 1', 1, '=', 'syntax error'],
    ['a = [ 1,\n\n 2', 3, '', 'syntax error'],
    ['a = "\\x4"', 1, '"\\x4"', 'lexical error'],
    ['a = "\\0"', 1, '"\\0"', 'lexical error'],
  ])('reports %j as an error on line %i', (text, line, near, what) => {
    const e = parseFailure(text);
    expect(e.message).toBe(`${line}: config parsing error near \`${near}': ${what}`);
    expect(e.details.line).toBe(line);
  });

  it('refuses += between a list and a string', () => {
    expect(parseFailure('a = [ 1 ]\na += "x"\n').details.line).toBe(2);
  });
});
