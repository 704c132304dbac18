import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { answerBindingFast } from '../../src/stun/fast-binding.js';
import { answerBinding, type BindingContext, type BindingReply } from '../../src/stun/binding.js';
import {
  type Attribute, type TransportAddress, AttrType, Method, MessageClass, changeRequest, decodeMessage, encodeMessage,
  isStunMessage, padding, responsePort, username, verifyFingerprint, xorMappedAddress,
} from '../../src/wire/index.js';

/** What the server's general path does with a datagram: drop (null), answer, or throw. */
function generalPath(request: Uint8Array, ctx: BindingContext): BindingReply | null | Error {
  if (!isStunMessage(request)) return null;
  let message;
  try {
    message = decodeMessage(request);
  } catch {
    return null;
  }
  if (verifyFingerprint(message) === false) return null; // as the server does (RFC 8489 §7.3)
  try {
    return answerBinding(message, ctx);
  } catch (error) {
    return error as Error;
  }
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');

/** The fast answer, if any, must be the general path's answer, byte for byte, sent the same way. */
function assertSameAsGeneral(request: Uint8Array, ctx: BindingContext): Uint8Array | null {
  const fast = answerBindingFast(request, ctx);
  if (fast === null) return null;
  const general = generalPath(request, ctx);
  if (general === null) assert.fail('the fast path answered what the general path drops');
  if (general instanceof Error) assert.fail(`the fast path answered what the general path throws on: ${general.message}`);
  assert.equal(hex(fast), hex(general.bytes));
  assert.deepEqual(general.to, ctx.remote);
  assert.equal(general.changeIp, false);
  assert.equal(general.changePort, false);
  return fast;
}

function bindingRequest(attributes: Attribute[], options: { fingerprint?: boolean; transactionId?: Uint8Array } = {}): Uint8Array {
  return encodeMessage({
    method: Method.Binding, messageClass: MessageClass.Request, attributes,
    transactionId: options.transactionId ?? new Uint8Array(12).fill(7),
  }, { fingerprint: options.fingerprint });
}

const v4: TransportAddress = { family: 4, address: '192.0.2.1', port: 3478 };
const v4Other: TransportAddress = { family: 4, address: '192.0.2.2', port: 3479 };

// Arbitraries: requests of the kinds the fast path claims, and the contexts a server passes.
const transactionId = fc.uint8Array({ minLength: 12, maxLength: 12 });
const port = fc.integer({ min: 0, max: 0xffff });
const address = fc.oneof(
  fc.record({ family: fc.constant(4 as const), address: fc.ipV4(), port }),
  fc.record({ family: fc.constant(6 as const), address: fc.ipV6(), port }),
);
// Text a caller might pass that the wire codec refuses: the general path throws, the fast one must decline.
const oddAddress = fc.record({
  family: fc.constantFrom(4 as const, 6 as const),
  address: fc.constantFrom('01.2.3.4', '1.2.3', '256.1.1.1', '1.2.3.4.5', 'fe80::1%eth0', 'localhost', '', '::1', '127.0.0.1'),
  port: fc.oneof(port, fc.constantFrom(-1, 65536, 1.5)),
});
const softwareText = fc.oneof(
  fc.constant(undefined), fc.constant('natpunch 0.1.0'), fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }), fc.string({ minLength: 120, maxLength: 140 }),
);
// SOFTWARE of any bytes, and a FINGERPRINT that verifies (a wrong one makes the message not STUN: RFC 8489 §7.3).
const inertAttribute: fc.Arbitrary<Attribute> = fc.record({ type: fc.constant(AttrType.Software as number), value: fc.uint8Array({ maxLength: 200 }) });
const handledRequest = fc.record({
  transactionId, attributes: fc.array(inertAttribute, { maxLength: 4 }), fingerprint: fc.boolean(),
}).map(({ transactionId: id, attributes, fingerprint }) => bindingRequest(attributes, { transactionId: id, fingerprint }));
const context = (remote: fc.Arbitrary<TransportAddress>, server: fc.Arbitrary<TransportAddress> = address): fc.Arbitrary<BindingContext> =>
  fc.record({
    local: server, remote, other: fc.option(server, { nil: undefined }), transport: fc.constantFrom('udp' as const, 'tcp' as const),
    software: softwareText,
  });

test('answers a plain 20-byte Binding request with XOR-MAPPED-ADDRESS of the source', () => {
  const request = bindingRequest([]);
  const response = assertSameAsGeneral(request, { local: v4, remote: { family: 4, address: '203.0.113.9', port: 40000 }, transport: 'udp' });
  assert.ok(response);
  const message = decodeMessage(response);
  assert.equal(message.messageClass, MessageClass.SuccessResponse);
  assert.deepEqual(xorMappedAddress.decode(message.attributes[0]!.value, message.transactionId), { family: 4, address: '203.0.113.9', port: 40000 });
});

test('adds OTHER-ADDRESS and RESPONSE-ORIGIN on an RFC 5780 server, exactly as answerBinding does', () => {
  const request = bindingRequest([]);
  const response = assertSameAsGeneral(request, { local: v4, other: v4Other, remote: { family: 6, address: '2001:db8::1', port: 1 }, transport: 'udp' });
  assert.deepEqual(decodeMessage(response!).attributes.map((a) => a.type), [AttrType.XorMappedAddress, AttrType.OtherAddress, AttrType.ResponseOrigin]);
});

test('answers FINGERPRINT with a FINGERPRINT that verifies', () => {
  const response = assertSameAsGeneral(bindingRequest([], { fingerprint: true }), { local: v4, remote: v4Other, transport: 'udp' });
  assert.equal(verifyFingerprint(decodeMessage(response!)), true);
});

test('adds SOFTWARE only when the request is large enough over UDP, always over TCP', () => {
  const small = bindingRequest([]);
  const large = bindingRequest([{ type: AttrType.Software, value: new Uint8Array(40) }]);
  const types = (request: Uint8Array, transport: 'udp' | 'tcp'): number[] =>
    decodeMessage(assertSameAsGeneral(request, { local: v4, remote: v4Other, transport, software: 'natpunch test' })!).attributes.map((a) => a.type);
  assert.deepEqual(types(small, 'udp'), [AttrType.XorMappedAddress]);
  assert.deepEqual(types(small, 'tcp'), [AttrType.XorMappedAddress, AttrType.Software]);
  assert.deepEqual(types(large, 'udp'), [AttrType.XorMappedAddress, AttrType.Software]);
});

test('declines every request whose answer depends on more than its source (general path instead)', () => {
  const cases: [string, Uint8Array][] = [
    ['CHANGE-REQUEST', bindingRequest([{ type: AttrType.ChangeRequest, value: changeRequest.encode({ changeIp: false, changePort: false }) }])],
    ['RESPONSE-PORT', bindingRequest([{ type: AttrType.ResponsePort, value: responsePort.encode(5000) }])],
    ['PADDING', bindingRequest([{ type: AttrType.Padding, value: padding.encode(64) }])],
    ['USERNAME', bindingRequest([{ type: AttrType.Username, value: username.encode('token') }])],
    ['unknown comprehension-required attribute', bindingRequest([{ type: 0x7ffe, value: new Uint8Array(4) }])],
    ['unknown comprehension-optional attribute', bindingRequest([{ type: 0xfffe, value: new Uint8Array(4) }])],
    ['Binding indication', encodeMessage({ method: Method.Binding, messageClass: MessageClass.Indication, transactionId: new Uint8Array(12), attributes: [] })],
    ['Allocate request', encodeMessage({ method: Method.Allocate, messageClass: MessageClass.Request, transactionId: new Uint8Array(12), attributes: [] })],
    ['length field past the datagram', Uint8Array.from([...bindingRequest([]).subarray(0, 3), 4, ...bindingRequest([]).subarray(4)])],
    ['wrong magic cookie', Uint8Array.from(bindingRequest([]), (b, i) => (i === 4 ? b ^ 1 : b))],
    ['19 bytes', bindingRequest([]).subarray(0, 19)],
    ['a wrong FINGERPRINT', Uint8Array.from(bindingRequest([], { fingerprint: true }), (b, i) => (i === 27 ? b ^ 1 : b))],
    ['FINGERPRINT before SOFTWARE', bindingRequest([{ type: AttrType.Fingerprint, value: new Uint8Array(4) }, { type: AttrType.Software, value: new Uint8Array(4) }])],
  ];
  for (const [what, request] of cases) {
    assert.equal(answerBindingFast(request, { local: v4, remote: v4Other, transport: 'udp' }), null, what);
  }
});

test('declines a request with more attributes than decodeMessage accepts', () => {
  const many = bindingRequest(Array.from({ length: 65 }, () => ({ type: AttrType.Software, value: new Uint8Array(0) })));
  const ctx: BindingContext = { local: v4, remote: v4Other, transport: 'udp' };
  assert.equal(generalPath(many, ctx), null);
  assert.equal(answerBindingFast(many, ctx), null);
});

test('follows a server address object that changed since the last request', () => {
  const local: TransportAddress = { ...v4 };
  const ctx: BindingContext = { local, other: v4Other, remote: v4Other, transport: 'udp' };
  assertSameAsGeneral(bindingRequest([]), ctx);
  local.port = 5000;
  const response = assertSameAsGeneral(bindingRequest([]), ctx);
  assert.ok(response);
});

test('declines an IPv4 source in a form net.isIPv4 refuses, leaving the error to the general path', () => {
  for (const text of ['01.2.3.4', '1.2.3', '256.0.0.1', '1.2.3.4.5', '1..2.3', ' 1.2.3.4', '1.2.3.4 ']) {
    const ctx: BindingContext = { local: v4, remote: { family: 4, address: text, port: 1 }, transport: 'udp' };
    assert.equal(answerBindingFast(bindingRequest([]), ctx), null, text);
    assert.equal((generalPath(bindingRequest([]), ctx) as Error).name, 'StunEncodeError', text);
  }
});

test('is byte-identical to decode + answerBinding on random requests of the kinds it handles', () => {
  let answered = 0;
  fc.assert(fc.property(handledRequest, context(address), (request, ctx) => {
    const general = generalPath(request, ctx);
    const fast = assertSameAsGeneral(request, ctx);
    // Complete on its class: it declines only where the general path throws (unencodable SOFTWARE).
    if (general instanceof Error) assert.equal(fast, null);
    else assert.ok(fast !== null, 'declined a request it handles');
    if (fast) answered++;
  }), { numRuns: 3000 });
  assert.ok(answered > 2000, `only ${answered} of 3000 answered`);
});

test('declines or agrees with the general path for unusable source or server addresses', () => {
  const either = fc.oneof(address, oddAddress);
  fc.assert(fc.property(handledRequest, context(either, either), (request, ctx) => {
    assertSameAsGeneral(request, ctx);
  }), { numRuns: 1000 });
});

test('never answers differently from the general path, whatever the bytes', () => {
  const anyAttribute = fc.record({ type: fc.oneof(fc.constantFrom(...Object.values(AttrType).filter((v): v is number => typeof v === 'number')), fc.integer({ min: 0, max: 0xffff })), value: fc.uint8Array({ maxLength: 24 }) });
  const mutated = fc.tuple(
    fc.array(anyAttribute, { maxLength: 5 }), transactionId, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), fc.nat(),
  ).map(([attributes, id, edits, cut]) => {
    const bytes = Uint8Array.from(bindingRequest(attributes, { transactionId: id }));
    for (const [at, value] of edits) bytes[at % bytes.length] = value;
    return cut % 4 === 0 ? bytes.subarray(0, cut % (bytes.length + 1)) : bytes;
  });
  fc.assert(fc.property(mutated, context(address), (request, ctx) => {
    assertSameAsGeneral(request, ctx);
  }), { numRuns: 3000 });
});
