import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { generateIdentity, identityFromPrivateKey, verify } from '../../src/identity/identity.js';

const data = new TextEncoder().encode('natpunch identity test');

describe('identities', () => {
  it('have distinct peer ids and 32-byte public keys', () => {
    const a = generateIdentity();
    const b = generateIdentity();
    assert.notEqual(a.peerId, b.peerId);
    assert.equal(a.publicKey.length, 32);
    assert.equal(a.privateKey.asymmetricKeyType, 'ed25519');
  });

  it('sign data so that verify accepts it with the matching public key', () => {
    const identity = generateIdentity();
    const signature = identity.sign(data);
    assert.equal(signature.length, 64);
    assert.equal(verify(identity.publicKey, data, signature), true);
  });

  it('produce signatures that fail for other data, another key or a flipped bit', () => {
    const identity = generateIdentity();
    const signature = identity.sign(data);
    assert.equal(verify(identity.publicKey, new TextEncoder().encode('other'), signature), false);
    assert.equal(verify(generateIdentity().publicKey, data, signature), false);
    const flipped = signature.slice();
    flipped[10] = (flipped[10] as number) ^ 1;
    assert.equal(verify(identity.publicKey, data, flipped), false);
  });

  it('make verify return false rather than throw on malformed keys and signatures', () => {
    const identity = generateIdentity();
    const signature = identity.sign(data);
    assert.equal(verify(identity.publicKey.subarray(1), data, signature), false);
    assert.equal(verify(identity.publicKey, data, signature.subarray(1)), false);
    assert.equal(verify(new Uint8Array(32).fill(0xff), data, signature), false);
  });

  it('verify the RFC 8032 §7.1 TEST 2 signature', () => {
    const publicKey = Buffer.from('3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c', 'hex');
    const signature = Buffer.from(
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
      'hex',
    );
    assert.equal(verify(publicKey, Uint8Array.of(0x72), signature), true);
  });

  it('can wrap an existing Ed25519 key but refuse other key types', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    assert.equal(identityFromPrivateKey(privateKey).privateKey, privateKey);
    assert.throws(() => identityFromPrivateKey(generateKeyPairSync('x25519').privateKey), TypeError);
  });
});
