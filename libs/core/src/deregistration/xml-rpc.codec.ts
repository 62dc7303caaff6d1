import { XMLParser } from 'fast-xml-parser';

/** The XML-RPC types Norm sends and reads; dateTime and base64 arrive as their text. */
export type XmlRpcValue = string | number | boolean | null | XmlRpcValue[] | { [name: string]: XmlRpcValue };

/** A `<fault>` answer: the server understood the call and refused it. */
export class XmlRpcFault extends Error {
  constructor(
    readonly faultCode: number,
    readonly faultString: string,
  ) {
    super(`fault ${faultCode}: ${faultString}`);
    this.name = 'XmlRpcFault';
  }
}

// XML 1.0 cannot carry these at all, escaped or not; refusing beats sending a call that fails.
// eslint-disable-next-line no-control-regex
const INVALID_XML_CHARS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;

function escapeText(text: string): string {
  if (INVALID_XML_CHARS.test(text)) throw new Error('XML-RPC string contains a character XML cannot carry');
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function encodeValue(value: XmlRpcValue): string {
  if (value === null) return '<value><nil/></value>';
  if (typeof value === 'string') return `<value><string>${escapeText(value)}</string></value>`;
  if (typeof value === 'boolean') return `<value><boolean>${value ? 1 : 0}</boolean></value>`;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error('XML-RPC cannot carry a non-finite number');
    // <int> is 32-bit signed; anything else goes as a double rather than being truncated.
    return Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31
      ? `<value><int>${value}</int></value>`
      : `<value><double>${value}</double></value>`;
  }
  if (Array.isArray(value))
    return `<value><array><data>${value.map(encodeValue).join('')}</data></array></value>`;
  const members = Object.entries(value)
    .map(([name, v]) => `<member><name>${escapeText(name)}</name>${encodeValue(v)}</member>`)
    .join('');
  return `<value><struct>${members}</struct></value>`;
}

/** A `<methodCall>` document for `method` with positional `params`. */
export function encodeXmlRpcCall(method: string, params: readonly XmlRpcValue[]): string {
  if (!/^[A-Za-z0-9_.:/]+$/.test(method)) throw new Error(`"${method}" is not an XML-RPC method name`);
  const body = params.map((p) => `<param>${encodeValue(p)}</param>`).join('');
  return `<?xml version="1.0" encoding="UTF-8"?><methodCall><methodName>${method}</methodName><params>${body}</params></methodCall>`;
}

/** With preserveOrder, an element is `{ tag: children }` and text is `{ '#text': text }`. */
type XmlNode = Record<string, unknown>;

const parser = new XMLParser({
  preserveOrder: true,
  // Every value stays text until its XML-RPC type says otherwise; whitespace in a <string> is data.
  parseTagValue: false,
  trimValues: false,
  ignoreAttributes: true,
  processEntities: true,
  htmlEntities: true,
});

function tagOf(node: XmlNode): string | undefined {
  return Object.keys(node).find((k) => k !== ':@' && k !== '#text');
}

function childrenOf(node: XmlNode): XmlNode[] {
  const tag = tagOf(node);
  return tag ? ((node[tag] as XmlNode[] | undefined) ?? []) : [];
}

function elements(nodes: XmlNode[]): XmlNode[] {
  return nodes.filter((n) => tagOf(n) !== undefined);
}

function textOf(nodes: XmlNode[]): string {
  return nodes.map((n) => (typeof n['#text'] === 'string' ? n['#text'] : '')).join('');
}

function only(nodes: XmlNode[], tag: string, where: string): XmlNode {
  const found = elements(nodes).filter((n) => tagOf(n) === tag);
  if (found.length !== 1 || !found[0])
    throw new Error(`malformed XML-RPC response: expected one <${tag}> in ${where}`);
  return found[0];
}

function decodeValue(valueNode: XmlNode): XmlRpcValue {
  const kids = childrenOf(valueNode);
  const typed = elements(kids);
  // A <value> with no type element is a string (the spec's default).
  if (typed.length === 0) return textOf(kids);
  const [typeNode] = typed;
  if (!typeNode || typed.length > 1) throw new Error('malformed XML-RPC response: a <value> with two types');
  const tag = tagOf(typeNode) ?? '';
  const inner = childrenOf(typeNode);
  const text = textOf(inner).trim();
  switch (tag) {
    case 'string':
      return textOf(inner);
    case 'int':
    case 'i4':
    case 'i8': {
      if (!/^[+-]?\d+$/.test(text)) throw new Error(`malformed XML-RPC <${tag}>: "${text}"`);
      return Number(text);
    }
    case 'double': {
      const n = Number(text);
      if (text === '' || !Number.isFinite(n)) throw new Error(`malformed XML-RPC <double>: "${text}"`);
      return n;
    }
    case 'boolean':
      if (text !== '0' && text !== '1') throw new Error(`malformed XML-RPC <boolean>: "${text}"`);
      return text === '1';
    case 'dateTime.iso8601':
    case 'base64':
      return text;
    case 'nil':
      return null;
    case 'array': {
      const data = only(inner, 'data', '<array>');
      return elements(childrenOf(data)).map((v) => {
        if (tagOf(v) !== 'value') throw new Error('malformed XML-RPC response: <data> holds a non-<value>');
        return decodeValue(v);
      });
    }
    case 'struct': {
      const out: Record<string, XmlRpcValue> = {};
      for (const member of elements(inner)) {
        if (tagOf(member) !== 'member')
          throw new Error('malformed XML-RPC response: <struct> holds a non-<member>');
        const parts = childrenOf(member);
        const name = textOf(childrenOf(only(parts, 'name', '<member>')));
        out[name] = decodeValue(only(parts, 'value', '<member>'));
      }
      return out;
    }
    default:
      throw new Error(`unsupported XML-RPC type <${tag}>`);
  }
}

/** The value of a `<methodResponse>`; a `<fault>` is thrown as an XmlRpcFault. */
export function decodeXmlRpcResponse(xml: string): XmlRpcValue {
  // XML-RPC never needs a DTD, and a DTD is how entity-expansion bombs get in.
  if (/<!DOCTYPE/i.test(xml)) throw new Error('XML-RPC response with a DOCTYPE refused');
  const root = only(parser.parse(xml) as XmlNode[], 'methodResponse', 'the document');
  const kids = childrenOf(root);
  const [first] = elements(kids);
  if (first && tagOf(first) === 'fault') {
    const fault = decodeValue(only(childrenOf(first), 'value', '<fault>'));
    if (typeof fault !== 'object' || fault === null || Array.isArray(fault))
      throw new Error('malformed XML-RPC fault');
    const code = typeof fault.faultCode === 'number' ? fault.faultCode : Number.NaN;
    throw new XmlRpcFault(code, typeof fault.faultString === 'string' ? fault.faultString : '');
  }
  const param = only(childrenOf(only(kids, 'params', '<methodResponse>')), 'param', '<params>');
  return decodeValue(only(childrenOf(param), 'value', '<param>'));
}
