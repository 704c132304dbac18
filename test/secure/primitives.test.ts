import assert from 'node:assert/strict';
import { hkdfSync, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { aeadDecrypt, aeadEncrypt, noiseNonce, rekey } from '../../src/secure/cipher-chachapoly.js';
import { dh, generateKeyPair, keyPairFromPrivateKey } from '../../src/secure/dh-25519.js';
import { hkdf } from '../../src/secure/hash-sha256.js';
import { assertNoiseError } from './helpers.js';

const hex = (data: Uint8Array): string => Buffer.from(data).toString('hex');
const bytes = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'));

describe('ChaChaPoly', () => {
  // RFC 8439 §2.8.2: Example and Test Vector for AEAD_CHACHA20_POLY1305.
  const key = bytes('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
  const nonce = bytes('070000004041424344454647');
  const ad = bytes('50515253c0c1c2c3c4c5c6c7');
  const plaintext = new TextEncoder().encode(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  );
  const ciphertext = bytes(`
    d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
    3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
    92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
    3ff4def08e4b7a9de576d26586cec64b6116`);
  const tag = '1ae10b594f09e26a7e902ecbd0600691';

  it('matches the RFC 8439 §2.8.2 AEAD test vector', () => {
    const sealed = aeadEncrypt(key, nonce, ad, plaintext);
    assert.equal(hex(sealed), hex(ciphertext) + tag);
    assert.deepEqual(aeadDecrypt(key, nonce, ad, sealed), plaintext);
  });

  it('rejects a flipped bit anywhere, or other associated data, as decrypt-failed', () => {
    const sealed = aeadEncrypt(key, nonce, ad, plaintext);
    for (const index of [0, 57, sealed.length - 16, sealed.length - 1]) {
      const tampered = sealed.slice();
      tampered[index] = (tampered[index] as number) ^ 0x01;
      assertNoiseError(() => aeadDecrypt(key, nonce, ad, tampered), 'decrypt-failed');
    }
    assertNoiseError(() => aeadDecrypt(key, nonce, new Uint8Array(0), sealed), 'decrypt-failed');
  });

  it('rejects a ciphertext shorter than the tag as malformed', () => {
    assertNoiseError(() => aeadDecrypt(key, nonce, ad, new Uint8Array(15)), 'malformed-message');
  });

  it('builds Noise nonces as 4 zero bytes and a 64-bit little-endian counter', () => {
    assert.equal(hex(noiseNonce(0)), '000000000000000000000000');
    assert.equal(hex(noiseNonce(1)), '000000000100000000000000');
    assert.equal(hex(noiseNonce(0x0102030405)), '000000000504030201000000');
    assert.equal(hex(noiseNonce(Number.MAX_SAFE_INTEGER)), '00000000ffffffffffff1f00');
    assert.equal(hex(noiseNonce('max')), '00000000ffffffffffffffff');
  });

  it('rekeys to the first 32 bytes of encrypting zeros under nonce 2^64-1', () => {
    const k = randomBytes(32);
    const expected = aeadEncrypt(k, bytes('00000000ffffffffffffffff'), new Uint8Array(0), new Uint8Array(32)).subarray(
      0,
      32,
    );
    assert.deepEqual(rekey(k), expected);
  });
});

describe('HKDF', () => {
  it('matches RFC 5869 test case 3 (salt = zero chaining key, empty info)', () => {
    const [first, second] = hkdf(new Uint8Array(32), new Uint8Array(22).fill(0x0b), 2);
    const okm = hex(first) + hex(second);
    assert.equal(
      okm.slice(0, 84),
      '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
    );
  });

  it('equals node:crypto HKDF with salt = chaining key and empty info, for 2 and 3 outputs', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 64 }), (ck, ikm) => {
        const reference = new Uint8Array(hkdfSync('sha256', ikm, ck, new Uint8Array(0), 96));
        const three = hkdf(ck, ikm, 3);
        assert.deepEqual(Buffer.concat(three), Buffer.from(reference));
        assert.deepEqual(Buffer.concat(hkdf(ck, ikm, 2)), Buffer.from(reference.subarray(0, 64)));
      }),
      { numRuns: 50 },
    );
  });
});

describe('X25519', () => {
  it('matches the RFC 7748 §6.1 Diffie-Hellman example', () => {
    const alice = keyPairFromPrivateKey(bytes('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'));
    const bob = keyPairFromPrivateKey(bytes('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'));
    assert.equal(hex(alice.publicKey), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    assert.equal(hex(bob.publicKey), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
    assert.equal(hex(dh(alice, bob.publicKey)), shared);
    assert.equal(hex(dh(bob, alice.publicKey)), shared);
  });

  it('refuses low-order public keys and wrong lengths as invalid-key', () => {
    const local = generateKeyPair();
    assertNoiseError(() => dh(local, new Uint8Array(32)), 'invalid-key');
    assertNoiseError(() => dh(local, Uint8Array.of(1, ...new Uint8Array(31))), 'invalid-key');
    assertNoiseError(() => dh(local, new Uint8Array(31)), 'invalid-key');
  });
});
