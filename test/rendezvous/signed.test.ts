import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { generateIdentity } from '../../src/identity/index.js';
import { DOMAIN, RendezvousVerifyError, bodyHash, openSigned, peekSigned, signObject } from '../../src/rendezvous/index.js';

const alice = generateIdentity();
const mallory = generateIdentity();

function verifyError(reason: string) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof RendezvousVerifyError, String(error));
    assert.equal(error.code, 'ERR_RENDEZVOUS_VERIFY');
    assert.equal(error.reason, reason);
    return true;
  };
}

test('a signed object opens with its signer\'s peer id and yields the value signed', () => {
  const value = { candidates: ['192.0.2.1:5'], n: 1, text: 'é' };
  const signed = signObject(alice, DOMAIN.accept, value);
  assert.deepEqual(openSigned(signed, DOMAIN.accept, alice.peerId), value);
  assert.equal(Buffer.from(signed.body, 'base64').toString('utf8'), JSON.stringify(value), 'the body is the JSON bytes as sent');
  assert.equal(Buffer.from(signed.sig, 'base64').length, 64);
});

test('the signature covers DOMAIN || body: another domain, signer or byte fails', () => {
  const signed = signObject(alice, DOMAIN.intent, { candidates: ['192.0.2.1:5'] });
  assert.throws(() => openSigned(signed, DOMAIN.accept, alice.peerId), verifyError('bad-signature'));
  assert.throws(() => openSigned(signed, DOMAIN.intent, mallory.peerId), verifyError('bad-signature'));
  const flipped = Buffer.from(signed.body, 'base64').toString('utf8').replace('192.0.2.1', '192.0.2.9');
  assert.throws(() => openSigned({ ...signed, body: Buffer.from(flipped).toString('base64') }, DOMAIN.intent, alice.peerId), verifyError('bad-signature'));
  assert.throws(() => openSigned(signed, DOMAIN.intent, 'not-a-peer-id'), verifyError('wrong-peer'));
});

test('the signature is over the exact bytes, so re-serialised JSON does not verify', () => {
  const signed = signObject(alice, DOMAIN.intent, { a: 1, b: 2 });
  const reordered = Buffer.from(JSON.stringify({ b: 2, a: 1 })).toString('base64');
  assert.throws(() => openSigned({ ...signed, body: reordered }, DOMAIN.intent, alice.peerId), verifyError('bad-signature'));
});

test('a validly signed body that is not JSON is reported as invalid, not trusted', () => {
  const body = Buffer.from('{not json');
  const sig = alice.sign(Buffer.concat([Buffer.from(DOMAIN.intent), body]));
  assert.throws(() => openSigned({ body: body.toString('base64'), sig: Buffer.from(sig).toString('base64') }, DOMAIN.intent, alice.peerId), verifyError('invalid'));
  assert.throws(() => peekSigned({ body: body.toString('base64'), sig: '' }), verifyError('invalid'));
});

test('bodyHash is base64 SHA-256 of the body bytes', () => {
  const signed = signObject(alice, DOMAIN.intent, { x: 1 });
  assert.equal(bodyHash(signed), createHash('sha256').update('{"x":1}').digest('base64'));
});

test('the domains are distinct ASCII lines', () => {
  const domains = Object.values(DOMAIN);
  assert.equal(new Set(domains).size, domains.length);
  for (const d of domains) assert.match(d, /^natpunch\/1 [a-z]+\n$/);
});
