import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PortMapDecodeError, PortMapError } from '../../src/errors.js';
import { decodeSsdpResponse, encodeMSearch } from '../../src/portmap/ssdp.js';
import { wanConnectionService } from '../../src/portmap/igd-description.js';
import { decodeSoapResponse, encodeSoapRequest } from '../../src/portmap/soap.js';
import { unescapeXml } from '../../src/portmap/xml-text.js';
import { DESCRIPTION } from './fake-gateway.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

test('M-SEARCH is the UDA 1.1 §1.3.2 request with ssdp:discover and the search target', () => {
  assert.equal(new TextDecoder().decode(encodeMSearch('urn:schemas-upnp-org:device:InternetGatewayDevice:1')),
    'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n');
  assert.throws(() => encodeMSearch('a\r\nX: y'), /line break/);
});

test('an SSDP response: headers in any case, LOCATION as a URL (as miniupnpd sends it)', () => {
  const response = decodeSsdpResponse(bytes('HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nst: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nUSN: uuid:x::urn\r\nEXT:\r\nSERVER: Debian/12 UPnP/1.1 MiniUPnPd/2.3.1\r\nLocation: http://10.0.1.1:41235/rootDesc.xml\r\n\r\n'));
  assert.equal(response.st, 'urn:schemas-upnp-org:device:InternetGatewayDevice:1');
  assert.equal(response.location.href, 'http://10.0.1.1:41235/rootDesc.xml');
  for (const [text, message] of [
    ['NOTIFY * HTTP/1.1\r\n\r\n', /expected "HTTP\/1.1 200 OK"/],
    ['HTTP/1.1 200 OK\r\nLOCATION: http://a/\r\n\r\n', /no ST header/],
    ['HTTP/1.1 200 OK\r\nST: x\r\n\r\n', /no LOCATION header/],
    ['HTTP/1.1 200 OK\r\nST: x\r\nLOCATION: file:///etc/passwd\r\n\r\n', /is not http:/],
    ['HTTP/1.1 200 OK\r\nST: x\r\nLOCATION: ::\r\n\r\n', /is not a URL/],
    ['HTTP/1.1 200 OK\r\nnocolon\r\n\r\n', /has no name/],
  ] as const) {
    assert.throws(() => decodeSsdpResponse(bytes(text)), (error: unknown) => error instanceof PortMapDecodeError && message.test(error.message), text);
  }
});

test('the description yields the WANIPConnection control URL, resolved against the description\'s URL', () => {
  const service = wanConnectionService(DESCRIPTION, new URL('http://10.0.1.1:5000/rootDesc.xml'));
  assert.equal(service.serviceType, 'urn:schemas-upnp-org:service:WANIPConnection:1');
  assert.equal(service.controlUrl.href, 'http://10.0.1.1:5000/ctl/IPConn');
  const withBase = DESCRIPTION.replace('<specVersion>', '<URLBase>http://10.0.1.1:6000/</URLBase><specVersion>');
  assert.equal(wanConnectionService(withBase, new URL('http://10.0.1.1:5000/d.xml')).controlUrl.href, 'http://10.0.1.1:6000/ctl/IPConn');
  assert.throws(() => wanConnectionService('<root><device/></root>', new URL('http://h/d.xml')), /no WANIPConnection or WANPPPConnection service/);
});

test('a SOAP request escapes its arguments and names the action in SOAPACTION', () => {
  const request = encodeSoapRequest('urn:schemas-upnp-org:service:WANIPConnection:1', 'AddPortMapping', [['NewPortMappingDescription', 'a<b&"c"'], ['NewExternalPort', 5]]);
  assert.equal(request.soapAction, '"urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping"');
  assert.match(request.body, /<u:AddPortMapping xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"><NewPortMappingDescription>a&lt;b&amp;&quot;c&quot;<\/NewPortMappingDescription><NewExternalPort>5<\/NewExternalPort><\/u:AddPortMapping>/);
});

test('SOAP responses: out arguments, empty self-closed responses, and UPnPError as PortMapError with its code', () => {
  const envelope = (inner: string): string => `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>${inner}</s:Body></s:Envelope>`;
  assert.deepEqual(decodeSoapResponse(200, envelope('<u:GetExternalIPAddressResponse xmlns:u="x"><NewExternalIPAddress>203.0.113.2</NewExternalIPAddress></u:GetExternalIPAddressResponse>'), 'GetExternalIPAddress', ['NewExternalIPAddress']), { NewExternalIPAddress: '203.0.113.2' });
  assert.deepEqual(decodeSoapResponse(200, envelope('<u:AddPortMappingResponse xmlns:u="x"/>'), 'AddPortMapping', []), {});
  assert.throws(() => decodeSoapResponse(500, envelope('<s:Fault><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>718</errorCode><errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault>'), 'AddPortMapping', []), (error: unknown) => {
    assert.ok(error instanceof PortMapError);
    assert.equal(error.status, 718);
    assert.equal(error.reason, 'refused');
    assert.match(error.message, /error 718 \(ConflictInMappingEntry\); another host holds that external port/);
    return true;
  });
  assert.throws(() => decodeSoapResponse(500, envelope(''), 'AddPortMapping', []), /HTTP 500 without a <UPnPError>/);
  assert.throws(() => decodeSoapResponse(200, '<html/>', 'AddPortMapping', []), /without a SOAP <Body>/);
  assert.throws(() => decodeSoapResponse(200, envelope('<u:GetExternalIPAddressResponse/>'), 'GetExternalIPAddress', ['NewExternalIPAddress']), /no <NewExternalIPAddress> element/);
});

test('XML text: the five entities and character references decode; markup or a bad reference where a value belongs is an error', () => {
  assert.equal(unescapeXml('a&lt;b&gt;&amp;&quot;&apos;&#65;&#x42;'), 'a<b>&"\'AB');
  assert.throws(() => unescapeXml('a<b/>'), /contains markup/);
  assert.throws(() => unescapeXml('&#0;'), /is not a character/);
  assert.throws(() => unescapeXml('&#xD800;'), /is not a character/);
});
