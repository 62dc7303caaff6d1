import { XMLParser } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { decodeXmlRpcResponse, encodeXmlRpcCall, XmlRpcFault } from './xml-rpc.codec';

describe('encodeXmlRpcCall', () => {
  it('types each parameter and escapes text', () => {
    const xml = encodeXmlRpcCall('system.deleteSystems', ['k<&>"', [1000010001, 2], true, 1.5, { a: 'b' }]);
    expect(xml).toBe(
      '<?xml version="1.0" encoding="UTF-8"?><methodCall><methodName>system.deleteSystems</methodName><params>' +
        '<param><value><string>k&lt;&amp;&gt;"</string></value></param>' +
        '<param><value><array><data><value><int>1000010001</int></value><value><int>2</int></value></data></array></value></param>' +
        '<param><value><boolean>1</boolean></value></param>' +
        '<param><value><double>1.5</double></value></param>' +
        '<param><value><struct><member><name>a</name><value><string>b</string></value></member></struct></value></param>' +
        '</params></methodCall>',
    );
    // Well-formed for an independent parser, and the text survives the round trip.
    const parsed = new XMLParser({ parseTagValue: false }).parse(xml) as {
      methodCall: { params: { param: { value: { string?: string } }[] } };
    };
    expect(parsed.methodCall.params.param[0]?.value.string).toBe('k<&>"');
  });

  it('refuses what XML cannot carry and what is not a method name', () => {
    expect(() => encodeXmlRpcCall('auth.login', ['a\u0001b'])).toThrow('character XML cannot carry');
    expect(() => encodeXmlRpcCall('auth.login</methodName>', [])).toThrow('not an XML-RPC method name');
    expect(() => encodeXmlRpcCall('x', [Number.NaN])).toThrow('non-finite');
  });
});

describe('decodeXmlRpcResponse', () => {
  const wrap = (value: string): string =>
    `<?xml version="1.0" encoding="UTF-8"?>\n<methodResponse>\n <params>\n  <param>\n   ${value}\n  </param>\n </params>\n</methodResponse>\n`;

  it('reads the types Uyuni answers with', () => {
    const xml = wrap(`<value><array><data>
      <value><struct>
        <member><name>id</name><value><i4>1000010001</i4></value></member>
        <member><name>name</name><value><string> web-1 &amp; co </string></value></member>
        <member><name>last_checkin</name><value><dateTime.iso8601>20260101T10:00:00</dateTime.iso8601></value></member>
        <member><name>active</name><value><boolean>1</boolean></value></member>
        <member><name>note</name><value>untyped</value></member>
        <member><name>none</name><value><nil/></value></member>
        <member><name>ratio</name><value><double>-0.25</double></value></member>
      </struct></value>
      <value><int>7</int></value>
    </data></array></value>`);
    expect(decodeXmlRpcResponse(xml)).toEqual([
      {
        id: 1000010001,
        name: ' web-1 & co ',
        last_checkin: '20260101T10:00:00',
        active: true,
        note: 'untyped',
        none: null,
        ratio: -0.25,
      },
      7,
    ]);
    expect(decodeXmlRpcResponse(wrap('<value><array><data></data></array></value>'))).toEqual([]);
    expect(decodeXmlRpcResponse(wrap('<value><string>&#x41;&#66;</string></value>'))).toBe('AB');
  });

  it('throws a fault with its code and string', () => {
    const xml = `<?xml version="1.0"?><methodResponse><fault><value><struct>
      <member><name>faultCode</name><value><int>2950</int></value></member>
      <member><name>faultString</name><value><string>redstone.xmlrpc.XmlRpcFault: Either the password or username is incorrect.</string></value></member>
    </struct></value></fault></methodResponse>`;
    const err = (() => {
      try {
        decodeXmlRpcResponse(xml);
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(XmlRpcFault);
    expect((err as XmlRpcFault).faultCode).toBe(2950);
    expect((err as XmlRpcFault).message).toMatch(/^fault 2950: .*incorrect/);
  });

  it('refuses a DOCTYPE and malformed documents', () => {
    expect(() =>
      decodeXmlRpcResponse('<!DOCTYPE x [<!ENTITY a "aaaa">]><methodResponse></methodResponse>'),
    ).toThrow('DOCTYPE');
    expect(() => decodeXmlRpcResponse('<html>502 Bad Gateway</html>')).toThrow('methodResponse');
    expect(() => decodeXmlRpcResponse(wrap('<value><int>12a</int></value>'))).toThrow(
      'malformed XML-RPC <int>',
    );
    expect(() => decodeXmlRpcResponse(wrap('<value><boolean>yes</boolean></value>'))).toThrow('<boolean>');
    expect(() => decodeXmlRpcResponse(wrap('<value><string>a</string><int>1</int></value>'))).toThrow(
      'two types',
    );
  });
});
