import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fc from 'fast-check';
import { once } from '../support/wait.js';
import { answersBeforeMarker } from '../support/stun-marker.js';
import { StunServer } from '../../src/stun/server.js';
import { answerBinding, type BindingContext } from '../../src/stun/binding.js';
import {
  type Attribute, type TransportAddress, AttrType, Method, MessageClass, changeRequest, decodeMessage, encodeMessage,
  newTransactionId, padding, responsePort, software,
} from '../../src/wire/index.js';

// Decision 001: over UDP, whose source can be spoofed, an error response is never larger than
// its request; a success response is at most max(request, the essential attributes).

const local: TransportAddress = { family: 4, address: '192.0.2.1', port: 3478 };
const other: TransportAddress = { family: 4, address: '192.0.2.2', port: 3479 };
const remote: TransportAddress = { family: 4, address: '198.51.100.7', port: 40_000 };

/** Attributes that make a Binding request erroneous, or not. */
const attribute: fc.Arbitrary<Attribute> = fc.oneof(
  // CHANGE-REQUEST: well-formed (flags) or of a wrong length (finding: zero-length → 96-byte 400).
  fc.record({ changeIp: fc.boolean(), changePort: fc.boolean() }).map((v) => ({ type: AttrType.ChangeRequest, value: changeRequest.encode(v) })),
  fc.uint8Array({ maxLength: 12 }).map((value) => ({ type: AttrType.ChangeRequest, value })),
  // RESPONSE-PORT: a port (0 is an error), or a wrong length.
  fc.integer({ min: 0, max: 0xffff }).map((port) => ({ type: AttrType.ResponsePort, value: responsePort.encode(port) })),
  fc.uint8Array({ maxLength: 8 }).map((value) => ({ type: AttrType.ResponsePort, value })),
  // Unknown comprehension-required (0x0000-0x7fff) attributes → 420; comprehension-optional ones are ignored.
  fc.record({ type: fc.integer({ min: 0x4000, max: 0x7fff }), value: fc.uint8Array({ maxLength: 8 }) }),
  fc.record({ type: fc.integer({ min: 0xc100, max: 0xffff }), value: fc.uint8Array({ maxLength: 8 }) }),
  fc.integer({ min: 0, max: 64 }).map((n) => ({ type: AttrType.Padding, value: padding.encode(n * 4) })),
  fc.string({ maxLength: 20 }).map((text) => ({ type: AttrType.Software, value: software.encode(text) })),
);

const contexts: [string, BindingContext][] = [
  ['RFC 5780 server', { local, remote, other, transport: 'udp', software: 'natpunch test' }],
  ['plain server', { local, remote, transport: 'udp', software: 'natpunch test' }],
];

/** The essential success attributes (decision 001): XOR-MAPPED-ADDRESS, + OTHER-ADDRESS and RESPONSE-ORIGIN, + FINGERPRINT. */
function essential(ctx: BindingContext, fingerprint: boolean): number {
  return 20 + 12 + (ctx.other ? 24 : 0) + (fingerprint ? 8 : 0);
}

test('property: over UDP every error response is at most its request, every success at most max(request, essential)', () => {
  let errors = 0;
  fc.assert(fc.property(
    fc.array(attribute, { maxLength: 5 }), fc.boolean(), fc.integer({ min: 0, max: 1 }),
    (attributes, fingerprint, which) => {
      const [name, ctx] = contexts[which]!;
      const request = encodeMessage({ method: Method.Binding, messageClass: MessageClass.Request, transactionId: newTransactionId(), attributes }, { fingerprint });
      const reply = answerBinding(decodeMessage(request), ctx);
      if (reply === null) return;
      const response = decodeMessage(reply.bytes);
      if (response.messageClass === MessageClass.ErrorResponse) {
        errors++;
        assert.ok(reply.bytes.length <= request.length, `${name}: a ${reply.bytes.length}-byte error response to a ${request.length}-byte request`);
      } else {
        assert.ok(reply.bytes.length <= Math.max(request.length, essential(ctx, fingerprint)), `${name}: a ${reply.bytes.length}-byte success response to a ${request.length}-byte request`);
      }
    },
  ), { numRuns: 5000 });
  assert.ok(errors > 100, `only ${errors} error responses among the generated requests: the generator no longer exercises errors`);
});

test('property: over TCP, where the source is not spoofed, errors keep their reason phrase', () => {
  const request = encodeMessage({ method: Method.Binding, messageClass: MessageClass.Request, transactionId: newTransactionId(),
    attributes: [{ type: AttrType.ChangeRequest, value: new Uint8Array(0) }] });
  const reply = answerBinding(decodeMessage(request), { local, remote, transport: 'tcp' });
  assert.ok(reply !== null && reply.bytes.length > request.length, 'a TCP error response is not cut to its request size');
});

// The three cases measured against `natpunch serve` on loopback (issue 11), over real UDP.
let server: StunServer;
let plain: StunServer;
let socket: dgram.Socket;

before(async () => {
  server = await StunServer.listen({ address: '127.0.0.1', altAddress: '127.0.0.2', port: 0, altPort: 0, software: 'natpunch test', native: false });
  plain = await StunServer.listen({ address: '127.0.0.1', port: 0, software: 'natpunch test', native: false });
  socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
});

after(async () => {
  socket.close();
  await server.close();
  await plain.close();
});

/** The sizes of what the server answered to `request` (test/support/stun-marker.ts). */
async function answersTo(request: Uint8Array, to: TransportAddress): Promise<number[]> {
  return (await answersBeforeMarker(socket, request, to)).map((data) => data.length);
}

const measured: [string, () => StunServer, Attribute][] = [
  ['a zero-length CHANGE-REQUEST (was a 96-byte 400 for 24 bytes)', () => server, { type: AttrType.ChangeRequest, value: new Uint8Array(0) }],
  ['a malformed RESPONSE-PORT (was 3.3x)', () => server, { type: AttrType.ResponsePort, value: new Uint8Array(2) }],
  ['an unknown comprehension-required attribute (was a 2.3x 420)', () => server, { type: 0x7f01, value: new Uint8Array(0) }],
  ['CHANGE-REQUEST to a server without an alternate address', () => plain, { type: AttrType.ChangeRequest, value: changeRequest.encode({ changeIp: true, changePort: false }) }],
];

for (const [what, target, attr] of measured) {
  test(`over UDP, ${what} gets no answer larger than the request`, async () => {
    const request = encodeMessage({ method: Method.Binding, messageClass: MessageClass.Request, transactionId: newTransactionId(), attributes: [attr] });
    const sizes = await answersTo(request, target().addresses[0]!);
    for (const size of sizes) assert.ok(size <= request.length, `a ${size}-byte answer to a ${request.length}-byte request`);
  });
}

test('over UDP, an erroneous request padded to room enough gets its error response with the reason phrase', async () => {
  const request = encodeMessage({ method: Method.Binding, messageClass: MessageClass.Request, transactionId: newTransactionId(), attributes: [
    { type: AttrType.ChangeRequest, value: new Uint8Array(0) }, { type: AttrType.Padding, value: padding.encode(200) },
  ] });
  const sizes = await answersTo(request, server.addresses[0]!);
  assert.equal(sizes.length, 1, 'one error response');
  assert.ok(sizes[0]! <= request.length && sizes[0]! > 28, `a ${sizes[0]}-byte error response to a ${request.length}-byte request, with a reason phrase`);
});
