import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { NoiseError } from '../../src/secure/errors.js';
import { encodeFrame, FrameDecoder, sealFrame } from '../../src/secure/framing.js';
import { CipherState } from '../../src/secure/cipher-state.js';

describe('stream framing', () => {
  it('prefixes each message with its length as 16-bit big-endian', () => {
    assert.deepEqual(encodeFrame(Uint8Array.of(7, 8, 9)), Uint8Array.of(0, 3, 7, 8, 9));
    assert.deepEqual(encodeFrame(new Uint8Array(0x0102)).subarray(0, 2), Uint8Array.of(1, 2));
  });

  it('refuses a message over 65535 bytes as message-too-large', () => {
    assert.throws(
      () => encodeFrame(new Uint8Array(65536)),
      (error: unknown) =>
        error instanceof NoiseError && error.code === 'ERR_NOISE' && error.reason === 'message-too-large',
    );
  });

  it('reassembles messages from chunks cut anywhere', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 20 }),
        (messages, cuts) => {
          const stream = Buffer.concat(messages.map(encodeFrame));
          const decoder = new FrameDecoder();
          const received: Uint8Array[] = [];
          let offset = 0;
          for (let i = 0; offset < stream.length; i++) {
            const size = cuts[i % cuts.length] as number;
            received.push(...decoder.push(stream.subarray(offset, offset + size)));
            offset += size;
          }
          assert.deepEqual(received, messages);
          assert.equal(decoder.buffered, 0);
        },
      ),
    );
  });

  it('sealFrame gives the same bytes as encodeFrame of the encrypted message', () => {
    const key = new Uint8Array(32).fill(7);
    const sealing = new CipherState(key);
    const reference = new CipherState(key);
    const empty = new Uint8Array(0);
    for (const length of [0, 1, 1200, 32768, 65519]) {
      const plaintext = new Uint8Array(length).map((_, i) => i);
      const sealed = sealFrame({ encrypt: (p, headroom) => sealing.encryptWithAd(empty, p, headroom) }, plaintext);
      assert.deepEqual(sealed, encodeFrame(reference.encryptWithAd(empty, plaintext)));
    }
  });

  it('sealFrame refuses a message over 65535 bytes as message-too-large', () => {
    const passThrough = { encrypt: (p: Uint8Array, headroom: number) => new Uint8Array(headroom + p.length) };
    assert.throws(
      () => sealFrame(passThrough, new Uint8Array(65536)),
      (error: unknown) => error instanceof NoiseError && error.reason === 'message-too-large',
    );
  });
});
