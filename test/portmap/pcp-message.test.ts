import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PortMapDecodeError } from '../../src/errors.js';
import {
  PcpOpcode, PcpOptionCode, decodeOptions, decodePcpRequest, decodePcpResponse, encodeOptions, encodePcpRequest, encodePcpResponse,
  pcpAddressBytes, pcpAddressText, pcpResultName,
} from '../../src/portmap/pcp-message.js';
import { MAP_BODY, decodeMapBody, decodeMapResponse, encodeMapBody } from '../../src/portmap/pcp-map.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const NONCE = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);

test('a MAP request: version 2, R=0 opcode 1, lifetime, client address IPv4-mapped, then nonce, protocol 17, ports, all-zeros address (RFC 6887 §7.1, §11.1)', () => {
  const bytes = encodePcpRequest({
    opcode: PcpOpcode.Map, requestedLifetimeSeconds: 7200, clientAddress: '10.0.1.2', options: [],
    body: encodeMapBody({ nonce: NONCE, protocol: 'udp', internalPort: 40000, externalPort: 40000, externalAddress: '0.0.0.0' }),
  });
  assert.equal(bytes.length, 60);
  assert.equal(hex(bytes),
    '0201' + '0000' + '00001c20' + '00000000000000000000ffff0a000102'
    + '0102030405060708090a0b0c' + '11' + '000000' + '9c40' + '9c40' + '00000000000000000000ffff00000000');
  const decoded = decodePcpRequest(bytes, MAP_BODY);
  assert.equal(decoded.clientAddress, '10.0.1.2');
  assert.deepEqual(decodeMapBody(decoded.body), { nonce: NONCE, protocol: 'udp', internalPort: 40000, externalPort: 40000, externalAddress: '0.0.0.0' });
});

test('a MAP response round-trips, options included', () => {
  const options = [{ code: PcpOptionCode.PreferFailure, data: new Uint8Array(0) }, { code: 200, data: Uint8Array.of(1, 2, 3, 4, 5) }];
  const bytes = encodePcpResponse({
    opcode: PcpOpcode.Map, resultCode: 0, lifetimeSeconds: 3600, epochSeconds: 12345, options,
    body: encodeMapBody({ nonce: NONCE, protocol: 'tcp', internalPort: 22, externalPort: 2222, externalAddress: '203.0.113.1' }),
  });
  assert.equal(bytes.length % 4, 0);
  assert.equal(bytes[1], 0x81);
  assert.deepEqual(decodeMapResponse(decodePcpResponse(bytes)), {
    opcode: 1, resultCode: 0, lifetimeSeconds: 3600, epochSeconds: 12345,
    nonce: NONCE, protocol: 'tcp', internalPort: 22, externalPort: 2222, externalAddress: '203.0.113.1', options,
  });
});

test('addresses: IPv4 as ::ffff:a.b.c.d on the wire, IPv6 as itself', () => {
  assert.equal(hex(pcpAddressBytes('192.0.2.1')), '00000000000000000000ffffc0000201');
  assert.equal(pcpAddressText(pcpAddressBytes('192.0.2.1')), '192.0.2.1');
  assert.equal(pcpAddressText(pcpAddressBytes('2001:db8::1')), '2001:db8::1');
  assert.equal(pcpResultName(12), 'ADDRESS_MISMATCH');
});

const header = (patch: (b: Uint8Array) => void, length = 24): Uint8Array => {
  const b = new Uint8Array(length);
  b[0] = 2;
  b[1] = 0x81;
  patch(b);
  return b;
};
const rejects: [string, Uint8Array, RegExp][] = [
  ['shorter than the 24-byte header', new Uint8Array(20), /20 bytes, expected at least 24/],
  ['longer than 1100 bytes', header(() => undefined, 1104), /more than 1100/],
  ['a length not a multiple of 4', header(() => undefined, 26), /not a multiple of 4/],
  ['another version', header((b) => { b[0] = 1; }), /version 1, expected 2/],
  ['a request (R bit 0)', header((b) => { b[1] = 1; }), /R bit is 0/],
];
for (const [what, bytes, message] of rejects) {
  test(`a response ${what} is rejected, saying so`, () => {
    assert.throws(() => decodePcpResponse(bytes), (error: unknown) => {
      assert.ok(error instanceof PortMapDecodeError);
      assert.match(error.message, message);
      return true;
    });
  });
}

test('MAP data: too short, another protocol, another opcode, and an option running past the end are rejected', () => {
  assert.throws(() => decodeMapResponse(decodePcpResponse(header(() => undefined))), /0 bytes of opcode data, expected 36/);
  const body = encodeMapBody({ nonce: NONCE, protocol: 'udp', internalPort: 1, externalPort: 1, externalAddress: '0.0.0.0' });
  body[12] = 132; // SCTP
  assert.throws(() => decodeMapBody(body), /protocol 132, expected 17 \(UDP\) or 6 \(TCP\)/);
  const peer = encodePcpResponse({ opcode: PcpOpcode.Peer, resultCode: 0, lifetimeSeconds: 0, epochSeconds: 0, body: new Uint8Array(56) });
  assert.throws(() => decodeMapResponse(decodePcpResponse(peer)), /opcode 2, expected 1 \(MAP\)/);
  assert.throws(() => decodeOptions(Uint8Array.of(1, 0, 0, 8, 0, 0, 0, 0)), /length 8 \(8 padded\) runs past/);
  assert.throws(() => decodeOptions(Uint8Array.of(1, 0)), /2 bytes left, an option header needs 4/);
  assert.deepEqual(decodeOptions(encodeOptions([{ code: 1, data: Uint8Array.of(9) }])), [{ code: 1, data: Uint8Array.of(9) }]);
});
