import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { MAX_NONCE } from '../../src/secure/cipher-chachapoly.js';
import { CipherState } from '../../src/secure/cipher-state.js';
import { NoiseError } from '../../src/secure/errors.js';

const ad = new Uint8Array(0);
const text = (value: string): Uint8Array => new TextEncoder().encode(value);

describe('CipherState', () => {
  it('passes plaintext through unchanged while it has no key', () => {
    const state = new CipherState();
    assert.equal(state.hasKey(), false);
    assert.deepEqual(state.encryptWithAd(ad, text('hi')), text('hi'));
  });

  it('leaves headroom in front of the ciphertext when asked, keyed or not', () => {
    const key = randomBytes(32);
    const a = new CipherState(key);
    const b = new CipherState(key);
    const plaintext = randomBytes(100);
    const withRoom = a.encryptWithAd(new Uint8Array(0), plaintext, 5);
    assert.equal(withRoom.length, 5 + 100 + 16);
    assert.deepEqual(withRoom.subarray(5), b.encryptWithAd(new Uint8Array(0), plaintext));
    assert.deepEqual(new CipherState().encryptWithAd(new Uint8Array(0), plaintext, 3).subarray(3), new Uint8Array(plaintext));
  });

  it('counts nonces from zero and decrypts in the same order', () => {
    const key = randomBytes(32);
    const sender = new CipherState(key);
    const receiver = new CipherState(key);
    for (const message of ['one', 'two', 'three']) {
      assert.deepEqual(receiver.decryptWithAd(ad, sender.encryptWithAd(ad, text(message))), text(message));
    }
    assert.equal(sender.nonce, 3);
    assert.equal(receiver.nonce, 3);
  });

  it('does not advance the nonce when decryption fails', () => {
    const key = randomBytes(32);
    const sender = new CipherState(key);
    const receiver = new CipherState(key);
    const good = sender.encryptWithAd(ad, text('payload'));
    const bad = good.slice();
    bad[0] = (bad[0] as number) ^ 1;
    assert.throws(
      () => receiver.decryptWithAd(ad, bad),
      (error: unknown) => error instanceof NoiseError && error.reason === 'decrypt-failed',
    );
    assert.equal(receiver.nonce, 0);
    assert.deepEqual(receiver.decryptWithAd(ad, good), text('payload'));
  });

  it('refuses to encrypt once the nonce reaches its limit', () => {
    const state = new CipherState(randomBytes(32));
    state.setNonce(MAX_NONCE);
    assert.throws(
      () => state.encryptWithAd(ad, text('x')),
      (error: unknown) =>
        error instanceof NoiseError && error.code === 'ERR_NOISE' && error.reason === 'nonce-exhausted',
    );
  });

  it('keeps both sides in step across a rekey', () => {
    const key = randomBytes(32);
    const sender = new CipherState(key);
    const receiver = new CipherState(key);
    sender.encryptWithAd(ad, text('before'));
    receiver.setNonce(1);
    sender.rekey();
    receiver.rekey();
    assert.deepEqual(receiver.decryptWithAd(ad, sender.encryptWithAd(ad, text('after'))), text('after'));
    const stale = new CipherState(key);
    stale.setNonce(2);
    assert.throws(() => stale.decryptWithAd(ad, sender.encryptWithAd(ad, text('x'))), NoiseError);
  });
});
