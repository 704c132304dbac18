import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { nativeAeadAvailable } from '../../src/secure/chachapoly-key.js';
import { MAX_NONCE } from '../../src/secure/cipher-chachapoly.js';
import { CipherState } from '../../src/secure/cipher-state.js';
import { DATAGRAM_OVERHEAD, DatagramCipher } from '../../src/secure/datagram-cipher.js';
import { NoiseError } from '../../src/secure/errors.js';
import { assertNoiseError } from './helpers.js';

const available = nativeAeadAvailable();
const skip = available.ok ? false : available.reason;
const implementations = [true, false] as const;
const name = (native: boolean): string => (native ? 'native' : 'node:crypto');

const hex = (data: Uint8Array): string => Buffer.from(data).toString('hex');
const key = (seed: number): Uint8Array => Uint8Array.from({ length: 32 }, (_, i) => (i * 7 + seed) & 0xff);
const AD = Uint8Array.of(2);

/** Both ends of one session's datagram keys, the sender's counter starting at `first`. */
function pair(native: { a: boolean; b: boolean }, first = 0): [DatagramCipher, DatagramCipher] {
  const aSend = new CipherState(key(1));
  aSend.setNonce(first);
  const a = new DatagramCipher({ send: aSend, receive: new CipherState(key(2)) }, { native: native.a });
  const b = new DatagramCipher({ send: new CipherState(key(2)), receive: new CipherState(key(1)) }, { native: native.b });
  return [a, b];
}

/** A packet header claiming `counter`, followed by a tag's worth of bytes. */
function claiming(counter: bigint): Uint8Array {
  const packet = new Uint8Array(DATAGRAM_OVERHEAD + 4);
  new DataView(packet.buffer).setBigUint64(0, counter, true);
  return packet;
}

describe('the datagram cipher, native and node:crypto', () => {
  it('reports which AEAD it uses', { skip }, () => {
    assert.equal(pair({ a: true, b: false })[0].implementation, 'native');
    assert.equal(pair({ a: true, b: false })[1].implementation, 'node:crypto');
  });

  it('seals byte-identical packets for random sizes 0..1500, AD, headroom and counters, and each opens the other', { skip }, () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: MAX_NONCE - 2 }),
        fc.array(fc.uint8Array({ maxLength: 1500 }), { minLength: 1, maxLength: 4 }),
        fc.uint8Array({ maxLength: 32 }),
        fc.integer({ min: 0, max: 16 }),
        (first, plaintexts, ad, headroom) => {
          const start = Math.min(first, MAX_NONCE - plaintexts.length);
          const [native, nativeReceiver] = pair({ a: true, b: false }, start);
          const [js, jsReceiver] = pair({ a: false, b: true }, start);
          for (const plaintext of plaintexts) {
            const fromNative = native.seal(plaintext, ad, headroom);
            const fromJs = js.seal(plaintext, ad, headroom);
            assert.equal(hex(fromNative), hex(fromJs));
            assert.deepEqual(nativeReceiver.open(fromNative.subarray(headroom), ad), plaintext, 'native sealed, node:crypto opens');
            assert.deepEqual(jsReceiver.open(fromJs.subarray(headroom), ad), plaintext, 'node:crypto sealed, native opens');
          }
          assert.equal(native.sent, js.sent);
        },
      ),
      { seed: 0xd6a3, numRuns: 300 },
    );
  });

  for (const native of implementations) {
    it(`seals a burst as seal() would, packet by packet, in views of one buffer (${name(native)})`, () => {
      const [burst, receiver] = pair({ a: native, b: !native }, 2 ** 32 - 2);
      const [single] = pair({ a: native, b: native }, 2 ** 32 - 2);
      const plaintexts = [0, 1, 1170, 1170, 7].map((length) => new Uint8Array(length).fill(length & 0xff));
      const packets = burst.sealBatch(plaintexts, AD, 11);
      assert.equal(burst.sent, 2 ** 32 + 3);
      packets.forEach((packet, index) => {
        assert.equal(hex(packet), hex(single.seal(plaintexts[index]!, AD, 11)), `packet ${index}`);
        assert.equal(packet.buffer, packets[0]!.buffer);
        assert.deepEqual(receiver.open(packet.subarray(11), AD), plaintexts[index]);
      });
      assert.deepEqual(burst.sealBatch([], AD), []);
    });

    it(`opens in place as open() does, refusing the same packets (${name(native)})`, () => {
      const [a, b] = pair({ a: !native, b: native });
      const [, copy] = pair({ a: native, b: native });
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 1500 }), fc.boolean(), (plaintext, forge) => {
          const packet = a.seal(plaintext, AD);
          if (forge) packet[packet.length - 1] ^= 0x80;
          const expected = (() => {
            try {
              return copy.open(packet.slice(), AD);
            } catch (error) {
              return error as NoiseError;
            }
          })();
          if (expected instanceof NoiseError) {
            assertNoiseError(() => b.openInPlace(packet, AD), expected.reason);
            if (b.implementation === 'native') assert.deepEqual(packet.subarray(8, packet.length - 16), new Uint8Array(plaintext.length), 'a forgery is zeroed');
            return;
          }
          const opened = b.openInPlace(packet, AD);
          assert.deepEqual(opened, plaintext);
          assert.deepEqual(opened, expected);
          if (b.implementation === 'native') assert.equal(opened.buffer, packet.buffer, 'a view of the packet');
          assertNoiseError(() => b.openInPlace(packet, AD), 'replayed');
        }),
        { seed: 0x19b1, numRuns: 200 },
      );
    });

    it(`counts up to 2^53-2 and refuses beyond (${name(native)})`, () => {
      const [a, b] = pair({ a: native, b: native }, MAX_NONCE - 2);
      assertNoiseError(() => a.sealBatch([new Uint8Array(1), new Uint8Array(1), new Uint8Array(1)]), 'nonce-exhausted');
      assert.equal(a.sent, MAX_NONCE - 2, 'a refused burst seals nothing');
      const [second, last] = a.sealBatch([Uint8Array.of(1), Uint8Array.of(2)]);
      assert.equal(hex(last!.subarray(0, 8)), 'feffffffffff1f00', '2^53-2, little-endian');
      assertNoiseError(() => a.seal(Uint8Array.of(3)), 'nonce-exhausted', /limit 9007199254740991/);
      assert.deepEqual(b.open(last!), Uint8Array.of(2));
      assert.deepEqual(b.open(second!), Uint8Array.of(1));
      assertNoiseError(() => b.open(claiming(2n ** 53n - 1n)), 'nonce-exhausted', /datagram 9007199254740991: counter at the limit/);
      assertNoiseError(() => b.open(claiming(2n ** 53n)), 'malformed-message', /high word 2097152 beyond 2\^53/);
      assertNoiseError(() => b.open(claiming(2n ** 64n - 1n)), 'malformed-message', /high word 4294967295 beyond 2\^53/);
    });

    it(`refuses tampering and leaves the window where it was (${name(native)})`, () => {
      const [a, b] = pair({ a: !native, b: native });
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 1500 }), fc.nat(), fc.integer({ min: 0, max: 7 }), (plaintext, at, bit) => {
          const packet = a.seal(plaintext, AD);
          const tampered = packet.slice();
          tampered[at % tampered.length] ^= 1 << bit;
          try {
            b.open(tampered, AD);
            assert.fail('a tampered packet opened');
          } catch (error) {
            // A flipped counter bit may also land outside the window or beyond 2^53.
            assert.ok(error instanceof NoiseError, String(error));
            assert.ok(['decrypt-failed', 'replayed', 'malformed-message'].includes(error.reason), error.message);
          }
          assert.deepEqual(b.open(packet, AD), plaintext);
        }),
        { seed: 0x7a9e, numRuns: 200 },
      );
    });

    it(`throws invalid-state after dispose(), twice is fine (${name(native)})`, () => {
      const [a, b] = pair({ a: native, b: native });
      const packet = a.seal(Uint8Array.of(1));
      a.dispose();
      a.dispose();
      b.dispose();
      assertNoiseError(() => a.seal(Uint8Array.of(1)), 'invalid-state', /after dispose/);
      assertNoiseError(() => a.sealBatch([Uint8Array.of(1)]), 'invalid-state', /after dispose/);
      assertNoiseError(() => b.open(packet), 'invalid-state', /^datagram 0: ChaChaPoly: key used after dispose/);
    });
  }

  it('falls back to node:crypto with NATPUNCH_NO_NATIVE=1, and interoperates (child process)', () => {
    const module = (path: string): string => JSON.stringify(new URL(`../../src/secure/${path}`, import.meta.url).href);
    const script = `
      const { CipherState } = await import(${module('cipher-state.js')});
      const { DatagramCipher } = await import(${module('datagram-cipher.js')});
      const key = (seed) => Uint8Array.from({ length: 32 }, (_, i) => (i * 7 + seed) & 0xff);
      const cipher = new DatagramCipher({ send: new CipherState(key(1)), receive: new CipherState(key(2)) });
      const packet = cipher.seal(new TextEncoder().encode('hello'), Uint8Array.of(2));
      console.log(cipher.implementation, Buffer.from(packet).toString('hex'));
    `;
    const run = (env: NodeJS.ProcessEnv): [string, string] => {
      const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env, timeout: 30_000 });
      assert.equal(child.status, 0, child.stderr);
      return child.stdout.trim().split(' ') as [string, string];
    };
    const [fallback, fallbackPacket] = run({ ...process.env, NATPUNCH_NO_NATIVE: '1' });
    assert.equal(fallback, 'node:crypto');
    const [, b] = pair({ a: true, b: true });
    assert.deepEqual(b.open(Buffer.from(fallbackPacket, 'hex'), AD), new TextEncoder().encode('hello'));
    if (available.ok) {
      const { NATPUNCH_NO_NATIVE: _, ...env } = process.env;
      const [implementation, packet] = run(env);
      assert.equal(implementation, 'native');
      assert.equal(packet, fallbackPacket);
    }
  });
});
