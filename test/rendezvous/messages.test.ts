import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { generateIdentity } from '../../src/identity/index.js';
import {
  type ParsedMessage, DOMAIN, RendezvousProtocolError, classify, encodeMessage, endpoint, parseMessage, signObject, validate,
  validateAcceptBody, validateIntentBody, validateRegisterBody,
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
    { type: 'hello', version: 1, nonce: token, token, stun: ['0.0.0.0:3478', '192.0.2.1:3478'], serverTime: 1 },
    { type: 'register', signed },
    { type: 'registered', peerId: identity.peerId, srflx: '198.51.100.2:4000', observedSrflx: null },
    { type: 'connect', intent: signed },
    { type: 'incoming', intent: signed },
    { type: 'accept', accept: signed },
    { type: 'refuse', session: token, reason: 'no' },
    { type: 'punch', session: token, peer: identity.peerId, role: 'controlled', intent: signed, accept: signed, key: Buffer.alloc(32).toString('base64'), startInMs: 20 },
    { type: 'error', code: 'peer-not-found', message: 'x', ref: token },
    { type: 'error', code: 'invalid', message: '' },
  ];
  for (const message of messages) assert.deepEqual(parseMessage(encodeMessage(message)), message, message.type);
});

test('unknown fields are dropped, so nothing unvalidated reaches the handlers', () => {
  const parsed = validate(JSON.parse('{"type":"refuse","session":"AAAAAAAAAAAAAAAAAAAAAA","reason":"","extra":1,"__proto__":{"polluted":true}}'));
  assert.deepEqual(Object.keys(parsed), ['type', 'session', 'reason']);
  assert.equal(Object.getPrototypeOf(parsed), Object.prototype);
});

test('errors name the path, what was expected and what was got', () => {
  const table: [unknown, string, RegExp][] = [
    [null, 'invalid', /^message: expected an object, got null$/],
    [{ type: 7 }, 'invalid', /^message\.type: expected a string, got the number 7$/],
    [{ type: 'toString' }, 'unknown-type', /^message\.type: unknown type "toString"$/],
    [{ type: 'connect', intent: { body: 'e30=', sig: 'x' } }, 'invalid', /^connect\.intent\.sig: expected base64 of 64 bytes, got a string of 1 characters$/],
    [{ type: 'connect' }, 'invalid', /^connect\.intent: expected an object, got undefined$/],
    [{ type: 'refuse', session: 'short', reason: '' }, 'invalid', /^refuse\.session: expected a session id of 16-64 base64url characters, got a string of 5 characters$/],
    [{ type: 'punch', session: token, peer: identity.peerId, role: 'boss', intent: signed, accept: signed, key: '', startInMs: 0 }, 'invalid', /^punch\.role: expected "controlling" or "controlled", got a string of 4 characters$/],
    [{ type: 'punch', session: token, peer: identity.peerId, role: 'controlled', intent: signed, accept: signed, key: Buffer.alloc(32).toString('base64'), startInMs: 1.5 }, 'invalid', /^punch\.startInMs: expected an integer in 0\.\.60000, got the number 1\.5$/],
    [{ type: 'registered', peerId: identity.peerId.toUpperCase(), srflx: null, observedSrflx: null }, 'invalid', /^registered\.peerId: expected a peer id/],
    [{ type: 'hello', version: 2, nonce: token, token, stun: [], serverTime: 0 }, 'invalid', /^hello\.version: expected 1, got the number 2$/],
  ];
  for (const [message, reason, text] of table) assert.throws(() => validate(message), protocolError(reason, text));
});

test('parseMessage refuses frames over the size limit before parsing them', () => {
  assert.throws(() => parseMessage('x'.repeat(100), { maxMessageBytes: 99, maxCandidates: 16 }), protocolError('too-large', /^message: 100 bytes, at most 99$/));
  assert.throws(() => parseMessage(Buffer.from([0x7b, 0xff, 0x7d])), protocolError('bad-json', /^message: not JSON/));
});

test('signed intent bodies are checked field by field, candidates included', () => {
  const body = { from: identity.peerId, to: identity.peerId, nonce: token, expires: 5, candidates: ['[::1]:5'], session: token };
  assert.deepEqual(validateIntentBody(body), body);
  assert.throws(() => validateIntentBody({ ...body, candidates: ['[0:0::1]:5'] }), protocolError('invalid', /candidates\[0\]: expected a unicast "ip:port" endpoint in canonical form \("\[::1\]:5"\)/));
  assert.throws(() => validateIntentBody({ ...body, expires: -1 }), protocolError('invalid', /^intent\.body\.expires: expected an integer/));
});

test('TCP candidates and the requested transport are optional, signed fields checked like candidates', () => {
  const body = { from: identity.peerId, to: identity.peerId, nonce: token, expires: 5, candidates: ['192.0.2.1:5'], session: token };
  const tcp = { ...body, tcpCandidates: ['203.0.113.7:40001', '10.0.0.2:40001'], transport: 'tcp' };
  assert.deepEqual(validateIntentBody(tcp), tcp);
  assert.deepEqual(validateIntentBody(body), body, 'an intent without them stays valid');
  assert.throws(() => validateIntentBody({ ...body, tcpCandidates: ['0.0.0.0:1'] }), protocolError('invalid', /^intent\.body\.tcpCandidates\[0\]: expected a unicast/));
  assert.throws(() => validateIntentBody({ ...body, tcpCandidates: Array.from({ length: 17 }, (_, i) => `192.0.2.1:${i + 1}`) }), protocolError('invalid', /^intent\.body\.tcpCandidates: expected an array of 0-16 items/));
  assert.throws(() => validateIntentBody({ ...body, transport: 'relay' }), protocolError('invalid', /^intent\.body\.transport: expected/));
  const accept = { session: token, intentHash: Buffer.alloc(32).toString('base64'), candidates: [], nonce: token };
  assert.deepEqual(validateAcceptBody({ ...accept, tcpCandidates: ['192.0.2.9:7'] }), { ...accept, tcpCandidates: ['192.0.2.9:7'] });
  assert.deepEqual(validateAcceptBody(accept), accept);
  assert.throws(() => validateAcceptBody({ ...accept, tcpCandidates: ['224.0.0.1:7'] }), protocolError('invalid', /^accept\.body\.tcpCandidates\[0\]: expected a unicast/));
});

test('reachability claims, reversal listeners and transport auto are optional, signed fields checked like candidates', () => {
  const body = { from: identity.peerId, to: identity.peerId, nonce: token, expires: 5, candidates: ['192.0.2.1:5'], session: token };
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
  const registered = { type: 'registered', peerId: identity.peerId, srflx: null, observedSrflx: null, reachable: { udp: true, tcp: false } };
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
  const types = fc.constantFrom('hello', 'register', 'registered', 'connect', 'incoming', 'accept', 'refuse', 'punch', 'error');
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
