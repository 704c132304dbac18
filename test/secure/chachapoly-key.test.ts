import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type ChaChaPolyKey, createChaChaPolyKey, nativeAeadAvailable } from '../../src/secure/chachapoly-key.js';
import { aeadEncrypt, MAX_NONCE, noiseNonce } from '../../src/secure/cipher-chachapoly.js';
import { assertNoiseError } from './helpers.js';

const available = nativeAeadAvailable();
/** Tests of the native path skip, saying why, where native/aead is not built or turned off. */
const skip = available.ok ? false : available.reason;

const hex = (data: Uint8Array): string => Buffer.from(data).toString('hex');
/** Deterministic bytes: a run repeats byte for byte. */
const pattern = (length: number, seed = 1): Uint8Array => Uint8Array.from({ length }, (_, i) => (i * 31 + seed * 17) & 0xff);

function bothKeys(key: Uint8Array): { native: ChaChaPolyKey; js: ChaChaPolyKey } {
  return { native: createChaChaPolyKey(key), js: createChaChaPolyKey(key, { native: false }) };
}

function sealed(key: ChaChaPolyKey, n: number, ad: Uint8Array, plaintext: Uint8Array, offset = 0): Uint8Array {
  const out = new Uint8Array(offset + plaintext.length + 16);
  key.sealInto(n, ad, plaintext, out, offset);
  return out;
}

/** A counter a DatagramCipher may use: 0 .. 2^53-2, with the edges and 32-bit boundaries likely. */
const counter = fc.oneof(
  fc.integer({ min: 0, max: 2 ** 32 + 2 }),
  fc.constantFrom(0, 1, 2 ** 32 - 1, 2 ** 32, MAX_NONCE - 1),
  fc.integer({ min: 0, max: MAX_NONCE - 1 }),
);

describe('ChaChaPolyKey', () => {
  it('is native where native/aead loads, node:crypto when asked', { skip }, () => {
    const { native, js } = bothKeys(pattern(32));
    assert.equal(native.implementation, 'native');
    assert.equal(js.implementation, 'node:crypto');
  });

  it('seals exactly as aeadEncrypt with the Noise nonce, in both implementations', () => {
    const key = pattern(32);
    const plaintext = pattern(1170, 2);
    const ad = Uint8Array.of(2);
    const implementations = [createChaChaPolyKey(key), createChaChaPolyKey(key, { native: false })];
    for (const n of [0, 1, 255, 2 ** 32 - 1, 2 ** 32, MAX_NONCE - 1]) {
      const expected = hex(aeadEncrypt(key, noiseNonce(n), ad, plaintext));
      for (const implementation of implementations) {
        assert.equal(hex(sealed(implementation, n, ad, plaintext)), expected, `${implementation.implementation} n=${n}`);
      }
    }
  });

  it('gives byte-identical output native and node:crypto for random sizes 0..1500, AD and counters, and each opens the other', { skip }, () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 1500 }),
        fc.uint8Array({ maxLength: 64 }),
        counter,
        fc.integer({ min: 0, max: 48 }),
        (key, plaintext, ad, n, offset) => {
          const { native, js } = bothKeys(key);
          const fromNative = sealed(native, n, ad, plaintext, offset);
          const fromJs = sealed(js, n, ad, plaintext, offset);
          assert.equal(hex(fromNative), hex(fromJs));
          assert.deepEqual(fromNative.subarray(0, offset), new Uint8Array(offset), 'nothing written before offset');
          assert.deepEqual(js.open(n, ad, fromNative.subarray(offset)), plaintext);
          assert.deepEqual(native.open(n, ad, fromJs.subarray(offset)), plaintext);
          native.dispose();
        },
      ),
      { seed: 0x0aead, numRuns: 400 },
    );
  });

  it('refuses a flipped bit, another counter or other AD as decrypt-failed, in both implementations', () => {
    const { native, js } = bothKeys(pattern(32, 3));
    const ad = Uint8Array.of(2);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1500 }), fc.nat(), fc.integer({ min: 0, max: 7 }), counter, (size, at, bit, n) => {
        const packet = sealed(native, n, ad, pattern(size, n));
        const tampered = packet.slice();
        const index = at % tampered.length;
        tampered[index] = tampered[index]! ^ (1 << bit);
        for (const key of [native, js]) {
          assertNoiseError(() => key.open(n, ad, tampered), 'decrypt-failed', /^ChaChaPoly: authentication tag mismatch/);
          assertNoiseError(() => key.open(n === 0 ? 1 : n - 1, ad, packet), 'decrypt-failed');
          assertNoiseError(() => key.open(n, Uint8Array.of(3), packet), 'decrypt-failed');
          assert.equal(key.open(n, ad, packet).length, size, 'a refusal leaves the key usable');
        }
      }),
      { seed: 0x7a3e, numRuns: 200 },
    );
  });

  it('refuses a sealed message shorter than the tag as malformed, in both implementations', () => {
    for (const key of Object.values(bothKeys(pattern(32)))) {
      assertNoiseError(() => key.open(0, new Uint8Array(0), new Uint8Array(15)), 'malformed-message', /expected at least the 16-byte tag/);
    }
  });

  it('throws invalid-state after dispose(), which may be called again', () => {
    for (const key of Object.values(bothKeys(pattern(32)))) {
      const packet = sealed(key, 0, new Uint8Array(0), Uint8Array.of(1, 2, 3));
      key.dispose();
      key.dispose();
      assertNoiseError(() => sealed(key, 1, new Uint8Array(0), Uint8Array.of(1)), 'invalid-state', /after dispose\(\)/);
      assertNoiseError(() => key.open(0, new Uint8Array(0), packet), 'invalid-state', /after dispose\(\)/);
    }
  });

  it('frees contexts by finalizer and after dispose() without crashing (child process, forced GC)', { skip }, () => {
    const module = new URL('../../src/secure/chachapoly-key.js', import.meta.url).href;
    const script = `
      const { createChaChaPolyKey } = await import(${JSON.stringify(module)});
      const gc = globalThis.gc;
      const out = new Uint8Array(116);
      for (let round = 0; round < 20; round++) {
        for (let i = 0; i < 500; i++) {
          const key = createChaChaPolyKey(new Uint8Array(32).fill(i));
          key.sealInto(i, new Uint8Array(0), new Uint8Array(100), out, 0);
          if (i % 2 === 0) key.dispose();
        }
        gc();
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
      gc();
      console.log(createChaChaPolyKey(new Uint8Array(32)).implementation);
    `;
    const child = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(child.status, 0, child.stderr);
    assert.equal(child.stdout.trim(), 'native');
  });
});
