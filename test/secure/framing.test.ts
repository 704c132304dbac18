import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { NoiseError } from '../../src/secure/errors.js';
import { encodeFrame, FrameDecoder } from '../../src/secure/framing.js';

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
});
