import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { generateIdentity } from '../../src/identity/index.js';
import { candidatePriority, prioritise } from '../../src/punch/candidate.js';
import {
  type ParsedMessage, DOMAIN, RendezvousProtocolError, classify, encodeMessage, endpoint, fromCandidateRecord, knownCapabilities, openSigned,
  parseMessage, signObject, toCandidateRecord, validate, validateAcceptBody, validateIntentBody, validateRegisterBody, validateTrickleBody,
} from '../../src/rendezvous/index.js';

const identity = generateIdentity();
const token = 'AAAAAAAAAAAAAAAAAAAAAA';
const signed = signObject(identity, DOMAIN.intent, { hello: 1 });

function protocolError(reason: string, message: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof RendezvousProtocolError, String(error));
    assert.equal(error.code, 'ERR_RENDEZVOUS_PROTOCOL');
    assert.equal(error.reason, reason);
    assert.match(error.message, message);
    return true;
  };
}

test('every message type validates and survives encode -> parse unchanged', () => {
  const messages: ParsedMessage[] = [
    { type: 'hello', version: 2, versions: [2, 3], capabilities: ['trickle', 'from-the-future'], nonce: token, token, stun: ['0.0.0.0:3478', '192.0.2.1:3478'], serverTime: 1 },
    { type: 'hello', version: 1, nonce: token, token, stun: [], serverTime: 1 },
    { type: 'register', id: 1, version: 2, capabilities: ['trickle'], signed },
    { type: 'registered', id: 1, version: 2, capabilities: [], peerId: identity.peerId, srflx: '198.51.100.2:4000', observedSrflx: null },
    { type: 'connect', id: 2, intent: signed },
    { type: 'incoming', intent: signed },
    { type: 'accept', id: 3, accept: signed },
    { type: 'refuse', id: 4, session: token, reason: 'no' },
    { type: 'trickle', id: 5, session: token, signed },
    { type: 'candidates', session: token, signed },
    { type: 'ack', id: 5 },
    { type: 'report', id: 6, session: token, outcome: 'connected', path: 'relay', technique: 'turn-tcp', ms: 812 },
    { type: 'report', id: 7, session: token, outcome: 'failed', ms: 0 },
    { type: 'error', code: 'trickle-limit', message: 'x', id: 5, ref: token },
    { type: 'punch', session: token, peer: identity.peerId, role: 'controlled', intent: signed, accept: signed, key: Buffer.alloc(32).toString('base64'), startInMs: 20 },
    { type: 'error', code: 'peer-not-found', message: 'x', ref: token },
    { type: 'error', code: 'invalid', message: '' },
  ];
  for (const message of messages) assert.deepEqual(parseMessage(encodeMessage(message)), message, message.type);
});

test('unknown fields are dropped, so nothing unvalidated reaches the handlers', () => {
  const parsed = validate(JSON.parse('{"type":"refuse","id":1,"session":"AAAAAAAAAAAAAAAAAAAAAA","reason":"","extra":1,"__proto__":{"polluted":true}}'));
  assert.deepEqual(Object.keys(parsed), ['type', 'id', 'session', 'reason']);
  assert.equal(Object.getPrototypeOf(parsed), Object.prototype);
});

test('errors name the path, what was expected and what was got', () => {
  const table: [unknown, string, RegExp][] = [
    [null, 'invalid', /^message: expected an object, got null$/],
    [{ type: 7 }, 'invalid', /^message\.type: expected a string, got the number 7$/],
    [{ type: 'toString' }, 'unknown-type', /^message\.type: unknown type "toString"$/],
    [{ type: 'connect', id: 1, intent: { body: 'e30=', sig: 'x' } }, 'invalid', /^connect\.intent\.sig: expected base64 of 64 bytes, got a string of 1 characters$/],
    [{ type: 'connect', id: 1 }, 'invalid', /^connect\.intent: expected an object, got undefined$/],
    [{ type: 'connect', intent: signed }, 'invalid', /^connect\.id: expected an integer in 1\.\.9007199254740991, got undefined$/],
    [{ type: 'ack', id: 0 }, 'invalid', /^ack\.id: expected an integer in 1\.\./],
    [{ type: 'refuse', id: 1, session: 'short', reason: '' }, 'invalid', /^refuse\.session: expected a session id of 16-64 base64url characters, got a string of 5 characters$/],
    [{ type: 'punch', session: token, peer: identity.peerId, role: 'boss', intent: signed, accept: signed, key: '', startInMs: 0 }, 'invalid', /^punch\.role: expected "controlling" or "controlled", got a string of 4 characters$/],
    [{ type: 'punch', session: token, peer: identity.peerId, role: 'controlled', intent: signed, accept: signed, key: Buffer.alloc(32).toString('base64'), startInMs: 1.5 }, 'invalid', /^punch\.startInMs: expected an integer in 0\.\.60000, got the number 1\.5$/],
    [{ type: 'registered', id: 1, version: 2, capabilities: [], peerId: identity.peerId.toUpperCase(), srflx: null, observedSrflx: null }, 'invalid', /^registered\.peerId: expected a peer id/],
    [{ type: 'hello', version: 0, nonce: token, token, stun: [], serverTime: 0 }, 'invalid', /^hello\.version: expected an integer in 1\.\.65535, got the number 0$/],
    [{ type: 'hello', version: 2, versions: [], nonce: token, token, stun: [], serverTime: 0 }, 'invalid', /^hello\.versions: expected an array of 1-16 items, got an array of 0$/],
    [{ type: 'hello', version: 2, capabilities: ['Trickle'], nonce: token, token, stun: [], serverTime: 0 }, 'invalid', /^hello\.capabilities\[0\]: expected a capability name/],
    [{ type: 'register', id: 1, version: 2, signed }, 'invalid', /^register\.capabilities: expected an array of 0-32 items, got undefined$/],
  ];
  for (const [message, reason, text] of table) assert.throws(() => validate(message), protocolError(reason, text));
});

test('parseMessage refuses frames over the size limit before parsing them', () => {
  assert.throws(() => parseMessage('x'.repeat(100), { maxMessageBytes: 99, maxCandidates: 16 }), protocolError('too-large', /^message: 100 bytes, at most 99$/));
  assert.throws(() => parseMessage(Buffer.from([0x7b, 0xff, 0x7d])), protocolError('bad-json', /^message: not JSON/));
});

const host = { kind: 'host', transport: 'udp', address: '192.0.2.1', port: 5, priority: candidatePriority('host', 65_535) };

test('signed intent bodies are checked field by field, typed candidates included', () => {
  const body = { from: identity.peerId, to: identity.peerId, nonce: token, expires: 5, candidates: [{ ...host, address: '::1' }], session: token };
  assert.deepEqual(validateIntentBody(body), body);
  assert.throws(() => validateIntentBody({ ...body, candidates: [{ ...host, address: '0:0::1' }] }), protocolError('invalid', /^intent\.body\.candidates\[0\]\.address: expected a unicast IP address in canonical form \("::1"\), got a string of 6 characters$/));
  assert.throws(() => validateIntentBody({ ...body, candidates: ['[::1]:5'] }), protocolError('invalid', /^intent\.body\.candidates\[0\]: expected an object, got a string of 7 characters$/), 'version 1\'s "ip:port" strings are not candidates');
  assert.throws(() => validateIntentBody({ ...body, expires: -1 }), protocolError('invalid', /^intent\.body\.expires: expected an integer/));
});

test('a typed candidate is checked strictly, and says where and why', () => {
  const predicted = { kind: 'predicted', transport: 'udp', address: '203.0.113.7', port: 40_010, priority: candidatePriority('predicted', 65_535), range: { first: 40_000, last: 40_063 } };
  const check = (value: unknown) => validateAcceptBody({ session: token, intentHash: Buffer.alloc(32).toString('base64'), candidates: [value], nonce: token });
  for (const ok of [host, predicted, { ...host, kind: 'relay', transport: 'tcp', priority: candidatePriority('relay', 0) }, { ...host, address: '::ffff:192.0.2.1' }]) {
    assert.deepEqual(check(ok).candidates, [ok]);
  }
  const table: [string, unknown, RegExp][] = [
    ['an unknown kind', { ...host, kind: 'stun' }, /candidates\[0\]\.kind: expected "host" or "srflx" or "prflx" or "relay" or "mapped" or "predicted"/],
    ['an unknown transport', { ...host, transport: 'sctp' }, /candidates\[0\]\.transport: expected "udp" or "tcp"/],
    ['a host name', { ...host, address: 'example.com' }, /candidates\[0\]\.address: expected a unicast IP address, got a string/],
    ['an IPv4 address with leading zeros', { ...host, address: '192.0.2.01' }, /candidates\[0\]\.address: expected a unicast IP address/],
    ['upper-case IPv6', { ...host, address: '2001:DB8::1' }, /address: expected a unicast IP address in canonical form \("2001:db8::1"\)/],
    ['a multicast address', { ...host, address: '239.255.255.250' }, /address: expected a unicast IP address, not multicast/],
    ['a mapped multicast address', { ...host, address: '::ffff:224.0.0.1' }, /address: expected a unicast IP address, not multicast/],
    ['the unspecified address', { ...host, address: '::' }, /address: expected a unicast IP address, not unspecified/],
    ['broadcast', { ...host, address: '255.255.255.255' }, /address: expected a unicast IP address, not broadcast/],
    ['port 0', { ...host, port: 0 }, /candidates\[0\]\.port: expected an integer in 1\.\.65535, got the number 0/],
    ['port 65536', { ...host, port: 65_536 }, /\.port: expected an integer in 1\.\.65535/],
    ['priority 0', { ...host, priority: 0 }, /\.priority: expected an integer in 1\.\.2147483647, got the number 0/],
    ['priority 2^31', { ...host, priority: 2 ** 31 }, /\.priority: expected an integer in 1\.\.2147483647/],
    ['a fractional priority', { ...host, priority: 1.5 }, /\.priority: expected an integer/],
    ['a priority of component 2', { ...host, priority: host.priority - 1 }, /\.priority: expected a priority of component 1 \(RFC 8445 §5\.1\.2\.1: low 8 bits 255\)/],
    ['a range on a host candidate', { ...host, range: { first: 1, last: 9 } }, /\.range: expected no range on a host candidate \(only predicted ones have one\)/],
    ['a predicted candidate without range', { ...predicted, range: undefined }, /\.range: expected the port range of a predicted candidate, got undefined/],
    ['a port outside its range', { ...predicted, port: 39_999 }, /\.range: expected first <= port \(39999\) <= last, got 40000\.\.40063/],
    ['a window over the budget', { ...predicted, range: { first: 40_000, last: 40_064 } }, /\.range: expected at most 64 ports, got 65 ports \(40000\.\.40064\)/],
    ['a range ending at port 0', { ...predicted, range: { first: 40_000, last: 0 } }, /\.range\.last: expected an integer in 1\.\.65535/],
  ];
  for (const [what, value, message] of table) assert.throws(() => check(value), protocolError('invalid', message), what);
});

test('a candidate list holds UDP and TCP, each bounded, each address once, few predictions', () => {
  const body = { from: identity.peerId, to: identity.peerId, nonce: token, expires: 5, candidates: [] as unknown[], session: token };
  const many = (transport: string, n: number) => Array.from({ length: n }, (_, i) => ({ ...host, transport, port: i + 1 }));
  assert.equal(validateIntentBody({ ...body, candidates: [...many('udp', 16), ...many('tcp', 16)] }).candidates.length, 32);
  assert.throws(() => validateIntentBody({ ...body, candidates: many('udp', 17) }), protocolError('invalid', /^intent\.body\.candidates: expected at most 16 udp candidates, got 17 or more$/));
  assert.throws(() => validateIntentBody({ ...body, candidates: many('tcp', 33) }), protocolError('invalid', /^intent\.body\.candidates: expected an array of 0-32 items/));
  assert.deepEqual(validateIntentBody({ ...body, candidates: [host, { ...host, transport: 'tcp' }] }).candidates.length, 2, 'one address on two transports');
  assert.throws(() => validateIntentBody({ ...body, candidates: [host, { ...host, kind: 'srflx', priority: candidatePriority('srflx', 1) }] }),
    protocolError('invalid', /^intent\.body\.candidates\[1\]: expected each transport address once, got udp 192\.0\.2\.1 port 5 again$/));
  const guess = (i: number) => ({ kind: 'predicted', transport: 'udp', address: '203.0.113.7', port: 1000 * (i + 1), priority: candidatePriority('predicted', 65_535 - i), range: { first: 1000 * (i + 1), last: 1000 * (i + 1) + 63 } });
  assert.equal(validateIntentBody({ ...body, candidates: [0, 1, 2, 3].map(guess) }).candidates.length, 4);
  assert.throws(() => validateIntentBody({ ...body, candidates: [0, 1, 2, 3, 4].map(guess) }), protocolError('invalid', /^intent\.body\.candidates: expected at most 4 predicted candidates, got 5 or more$/));
});

test('the requested transport and capabilities are optional signed fields; unknown capability names pass and are ignored', () => {
  const body = { from: identity.peerId, to: identity.peerId, nonce: token, expires: 5, candidates: [host], session: token };
  const tcp = { ...body, transport: 'tcp', capabilities: ['trickle', 'from-the-future'] };
  assert.deepEqual(validateIntentBody(tcp), tcp);
  assert.deepEqual(knownCapabilities(validateIntentBody(tcp).capabilities), ['trickle']);
  assert.deepEqual(knownCapabilities(undefined), []);
  assert.deepEqual(validateIntentBody(body), body, 'an intent without them stays valid');
  assert.equal(validateIntentBody({ ...body, transport: 'relay' }).transport, 'relay', 'a connection may ask for the relay');
  assert.throws(() => validateIntentBody({ ...body, transport: 'carrier-pigeon' }), protocolError('invalid', /^intent\.body\.transport: expected/));
  assert.throws(() => validateIntentBody({ ...body, capabilities: ['x'.repeat(33)] }), protocolError('invalid', /^intent\.body\.capabilities\[0\]: expected a capability name of 1-32 characters/));
  const accept = { session: token, intentHash: Buffer.alloc(32).toString('base64'), candidates: [], nonce: token, capabilities: [] };
  assert.deepEqual(validateAcceptBody(accept), accept);
});

test('a trickle body names its session, a seq from 1, bounded candidates and at most an end-of-candidates', () => {
  const body = { session: token, seq: 1, candidates: [host] };
  assert.deepEqual(validateTrickleBody(body), body);
  assert.deepEqual(validateTrickleBody({ ...body, candidates: [], end: true }), { ...body, candidates: [], end: true });
  assert.throws(() => validateTrickleBody({ ...body, seq: 0 }), protocolError('invalid', /^trickle\.signed\.body\.seq: expected an integer in 1\.\./));
  assert.throws(() => validateTrickleBody({ ...body, end: false }), protocolError('invalid', /^trickle\.signed\.body\.end: expected true, got false$/));
  assert.throws(() => validateTrickleBody({ ...body, session: 'x' }), protocolError('invalid', /^trickle\.signed\.body\.session: expected a session id/));
  assert.throws(() => validateTrickleBody({ ...body, candidates: Array.from({ length: 17 }, (_, i) => ({ ...host, port: i + 1 })) }), protocolError('invalid', /at most 16 udp candidates/));
});

test('typed candidates survive signing: what the peer signs is what the other peer reads', () => {
  const candidates = [
    ...prioritise([{ type: 'host', address: { family: 4, address: '10.0.0.2', port: 4000 } }, { type: 'srflx', address: { family: 6, address: '2001:db8::7', port: 4001 } }], 'udp'),
    ...prioritise([{ type: 'predicted', address: { family: 4, address: '203.0.113.9', port: 50_001 }, range: { first: 50_000, last: 50_031 } }], 'tcp'),
  ];
  const records = candidates.map(toCandidateRecord);
  const intent = signObject(identity, DOMAIN.intent, { from: identity.peerId, to: identity.peerId, nonce: token, expires: 5, candidates: records, session: token });
  const opened = validateIntentBody(openSigned(intent, DOMAIN.intent, identity.peerId));
  assert.deepEqual(opened.candidates.map(fromCandidateRecord), candidates);
});

test('reachability claims, reversal listeners and transport auto are optional, signed fields checked like candidates', () => {
  const body = { from: identity.peerId, to: identity.peerId, nonce: token, expires: 5, candidates: [host], session: token };
  const reversal = { ...body, transport: 'auto', reachable: ['udp', 'tcp'], tcpListen: ['203.0.113.7:40001'] };
  assert.deepEqual(validateIntentBody(reversal), reversal);
  assert.throws(() => validateIntentBody({ ...body, reachable: ['sctp'] }), protocolError('invalid', /^intent\.body\.reachable\[0\]: expected "udp" or "tcp"/));
  assert.throws(() => validateIntentBody({ ...body, reachable: ['udp', 'tcp', 'udp'] }), protocolError('invalid', /^intent\.body\.reachable: expected an array of 0-2 items/));
  assert.throws(() => validateIntentBody({ ...body, tcpListen: ['255.255.255.255:1'] }), protocolError('invalid', /^intent\.body\.tcpListen\[0\]: expected a unicast/));
  const accept = { session: token, intentHash: Buffer.alloc(32).toString('base64'), candidates: [], nonce: token, reachable: ['tcp'], tcpListen: ['192.0.2.9:7'] };
  assert.deepEqual(validateAcceptBody(accept), accept);
  const register = { peerId: identity.peerId, nonce: token, privateEndpoints: [], srflx: null, tcpListenPort: 40001 };
  assert.deepEqual(validateRegisterBody(register), register);
  assert.throws(() => validateRegisterBody({ ...register, tcpListenPort: 0 }), protocolError('invalid', /^register\.signed\.body\.tcpListenPort: expected an integer in 1\.\.65535/));
  const registered = { type: 'registered', id: 1, version: 2, capabilities: [], peerId: identity.peerId, srflx: null, observedSrflx: null, reachable: { udp: true, tcp: false } };
  assert.deepEqual(parseMessage(JSON.stringify(registered)), registered);
  assert.throws(() => parseMessage(JSON.stringify({ ...registered, reachable: { udp: 1, tcp: false } })), protocolError('invalid', /^registered\.reachable\.udp: expected true or false, got the number 1/));
});

test('endpoints a peer may be aimed at are unicast, with a port', () => {
  const unicast = endpoint();
  const table: [string, boolean][] = [
    ['192.0.2.1:1', true], ['127.0.0.1:9', true], ['[2001:db8::1]:443', true], ['[::ffff:192.0.2.1]:5', true],
    ['192.0.2.1:0', false], ['0.0.0.0:5', false], ['[::]:5', false], ['224.0.0.251:5353', false], ['239.255.255.250:1900', false],
    ['255.255.255.255:9', false], ['[ff02::1]:9', false], ['[::ffff:224.0.0.1]:5', false], ['example.com:80', false], ['1.2.3.4', false],
    ['01.2.3.4:5', false], ['[2001:DB8::1]:5', false],
  ];
  for (const [text, ok] of table) {
    if (ok) assert.equal(unicast(text, 'x'), text, text);
    else assert.throws(() => unicast(text, 'x'), RendezvousProtocolError, text);
  }
  assert.equal(classify('0.0.0.0'), 'unspecified');
  assert.equal(endpoint({ allowUnspecified: true })('0.0.0.0:3478', 'x'), '0.0.0.0:3478');
});

test('validate throws nothing but RendezvousProtocolError on arbitrary JSON (fuzz)', () => {
  const types = fc.constantFrom('hello', 'register', 'registered', 'connect', 'incoming', 'accept', 'refuse', 'punch', 'error', 'trickle', 'candidates', 'ack');
  const shaped = fc.record({ type: types }).chain((base) => fc.dictionary(fc.string(), fc.jsonValue()).map((extra) => ({ ...extra, ...base })));
  fc.assert(fc.property(fc.oneof(fc.jsonValue(), shaped), (value) => {
    try {
      validate(value);
    } catch (error) {
      assert.ok(error instanceof RendezvousProtocolError, String(error));
    }
  }), { numRuns: 3000 });
  fc.assert(fc.property(fc.string({ unit: 'binary' }), (text) => {
    try {
      parseMessage(text);
    } catch (error) {
      assert.ok(error instanceof RendezvousProtocolError, String(error));
    }
  }), { numRuns: 2000 });
});
