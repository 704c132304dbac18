import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PortMapDecodeError } from '../../src/errors.js';
import {
  NatPmpResultCode, decodeNatPmpResponse, encodeErrorResponse, encodeExternalAddressRequest, encodeExternalAddressResponse,
  encodeMapRequest, encodeMapResponse, natPmpResultName,
} from '../../src/portmap/nat-pmp-message.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

test('the external address request is version 0, opcode 0 (RFC 6886 §3.2)', () => {
  assert.equal(hex(encodeExternalAddressRequest()), '0000');
});

test('a UDP map request lays out version, opcode 1, reserved, ports and lifetime big-endian (RFC 6886 §3.3)', () => {
  assert.equal(hex(encodeMapRequest({ protocol: 'udp', internalPort: 0x1234, suggestedExternalPort: 0x5678, lifetimeSeconds: 7200 })), '00010000123456780000' + '1c20');
  assert.equal(hex(encodeMapRequest({ protocol: 'tcp', internalPort: 80, suggestedExternalPort: 0, lifetimeSeconds: 0 })).slice(0, 4), '0002');
});

test('the external address response decodes: opcode 128, result, epoch, address', () => {
  const bytes = encodeExternalAddressResponse({ resultCode: 0, epochSeconds: 99, externalAddress: '203.0.113.5' });
  assert.equal(hex(bytes), '00800000' + '00000063' + 'cb007105');
  assert.deepEqual(decodeNatPmpResponse(bytes), { opcode: 0, resultCode: 0, epochSeconds: 99, externalAddress: '203.0.113.5' });
});

test('a map response round-trips', () => {
  const response = { opcode: 2 as const, resultCode: 0, epochSeconds: 5, internalPort: 22, mappedExternalPort: 2222, lifetimeSeconds: 3600 };
  const bytes = encodeMapResponse(response);
  assert.equal(bytes.length, 16);
  assert.equal(bytes[1], 130);
  assert.deepEqual(decodeNatPmpResponse(bytes), response);
});

test('an error response is the 8-byte header and decodes to its result code', () => {
  const bytes = encodeErrorResponse({ opcode: 1, resultCode: NatPmpResultCode.NotAuthorized, epochSeconds: 7 });
  assert.equal(hex(bytes), '00810002' + '00000007');
  assert.deepEqual(decodeNatPmpResponse(bytes), { opcode: 1, resultCode: 2, epochSeconds: 7 });
  assert.equal(natPmpResultName(2), 'Not Authorized/Refused');
  assert.equal(natPmpResultName(77), 'result code 77');
});

const rejects: [string, string, RegExp][] = [
  ['shorter than the header', '008000', /3 bytes, expected at least 8/],
  ['another version', '02800000' + '00000000' + '01020304', /version 2, expected 0/],
  ['a request opcode', '00010000' + '00000000' + '01020304', /opcode 1 is a request/],
  ['a success too short for its opcode', '00800000' + '00000000' + '0102', /external address response: 10 bytes, expected 12/],
  ['a map success with a trailing byte', '00810000' + '00000000' + '0001000200000003' + '00', /UDP map response: 17 bytes, expected 16/],
  ['a success for an opcode never sent', '00830000' + '00000000', /opcode 3, which this client never sends/],
];
for (const [what, bytes, message] of rejects) {
  test(`rejects ${what}, saying so`, () => {
    assert.throws(() => decodeNatPmpResponse(Buffer.from(bytes, 'hex')), (error: unknown) => {
      assert.ok(error instanceof PortMapDecodeError);
      assert.equal(error.code, 'ERR_PORTMAP_DECODE');
      assert.match(error.message, message);
      return true;
    });
  });
}

test('refuses to encode values the wire cannot carry', () => {
  assert.throws(() => encodeMapRequest({ protocol: 'udp', internalPort: 0, suggestedExternalPort: 0, lifetimeSeconds: 1 }), /internal port 0 is not an integer 1-65535/);
  assert.throws(() => encodeMapRequest({ protocol: 'udp', internalPort: 1, suggestedExternalPort: 70000, lifetimeSeconds: 1 }), /suggested external port 70000/);
  assert.throws(() => encodeMapRequest({ protocol: 'udp', internalPort: 1, suggestedExternalPort: 0, lifetimeSeconds: -1 }), /requested lifetime -1/);
  assert.throws(() => encodeExternalAddressResponse({ resultCode: 0, epochSeconds: 0, externalAddress: '::1' }), /not IPv4/);
  assert.throws(() => encodeErrorResponse({ opcode: 1, resultCode: 0, epochSeconds: 0 }), /Success, not an error/);
});
