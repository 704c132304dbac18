import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { NatpunchError } from '../../src/errors.js';
import {
  decodeFrame, encodeFrame, type Frame, FrameDecoder, FrameType, HEADER_LENGTH, MAX_FRAME_PAYLOAD, MAX_REASON_LENGTH, MuxError, MuxErrorCode,
} from '../../src/mux/index.js';

const streamId = fc.integer({ min: 1, max: 0xffff_ffff });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({ type: fc.constant(FrameType.Open as const), streamId, target: fc.string({ minLength: 1, maxLength: 60 }) }),
  fc.record({ type: fc.constant(FrameType.Data as const), streamId, data: fc.uint8Array({ maxLength: 2000 }) }),
  fc.record({ type: fc.constant(FrameType.WindowUpdate as const), streamId, increment: fc.integer({ min: 1, max: 0xffff_ffff }) }),
  fc.record({ type: fc.constant(FrameType.Fin as const), streamId }),
  fc.record({ type: fc.constant(FrameType.Reset as const), streamId, errorCode: u32, reason: fc.string({ maxLength: 100 }) }),
  fc.record({ type: fc.constant(FrameType.GoAway as const), streamId: fc.constant(0 as const), lastStreamId: u32, errorCode: u32, reason: fc.string({ maxLength: 100 }) }),
);

function isMuxError(error: unknown): boolean {
  return error instanceof MuxError && NatpunchError.is(error) && error.code === 'ERR_MUX';
}

describe('mux frame codec', () => {
  it('writes the header as length (24) | type (8) | stream id (32), big-endian', () => {
    const bytes = encodeFrame({ type: FrameType.Data, streamId: 0x01020304, data: Uint8Array.of(9, 9, 9) });
    assert.deepEqual(bytes, Uint8Array.of(0, 0, 3, 1, 1, 2, 3, 4, 9, 9, 9));
  });

  it('decode(encode(frame)) is the frame, for every frame type', () => {
    fc.assert(fc.property(frameArb, (frame) => {
      const decoded = decodeFrame(encodeFrame(frame));
      // fast-check builds records without a prototype: compare plain copies.
      if (frame.type === FrameType.Data) assert.deepEqual({ ...decoded, data: Uint8Array.from((decoded as { data: Uint8Array }).data) }, { ...frame });
      else assert.deepEqual(decoded, { ...frame });
    }));
  });

  it('reassembles frames from a byte stream cut anywhere', () => {
    fc.assert(fc.property(fc.array(frameArb, { maxLength: 10 }), fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 10 }), (frames, cuts) => {
      const bytes = Buffer.concat(frames.map(encodeFrame));
      const decoder = new FrameDecoder();
      const received: Frame[] = [];
      for (let offset = 0, i = 0; offset < bytes.length; i++) {
        const size = cuts[i % cuts.length]!;
        received.push(...decoder.push(bytes.subarray(offset, offset + size)));
        offset += size;
      }
      assert.equal(received.length, frames.length);
      assert.deepEqual(received.map((f) => encodeFrame(f)), frames.map(encodeFrame));
      assert.equal(decoder.buffered, 0);
    }));
  });

  it('random bytes throw nothing but MuxError, and never buffer more than one frame', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 600 }), { maxLength: 8 }), (chunks) => {
      const decoder = new FrameDecoder();
      try {
        for (const chunk of chunks) {
          decoder.push(chunk);
          assert.ok(decoder.buffered <= HEADER_LENGTH + MAX_FRAME_PAYLOAD);
        }
      } catch (error) {
        assert.ok(isMuxError(error), String(error));
      }
    }), { numRuns: 2000 });
  });

  it('valid headers with mutated payloads throw nothing but MuxError', () => {
    fc.assert(fc.property(frameArb, fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 255 }), (frame, position, value) => {
      const bytes = Uint8Array.from(encodeFrame(frame));
      bytes[position % bytes.length] = value;
      try {
        new FrameDecoder().push(bytes);
      } catch (error) {
        assert.ok(isMuxError(error), String(error));
      }
    }), { numRuns: 2000 });
  });

  it('refuses a header whose length exceeds the type\'s bound before its payload arrives', () => {
    const header = Uint8Array.of(0x00, 0x40, 0x01, FrameType.Data, 0, 0, 0, 1); // DATA of 16385 bytes
    assert.throws(() => new FrameDecoder().push(header), (e: unknown) => e instanceof MuxError && e.muxCode === MuxErrorCode.FrameSizeError && /DATA: payload of 16385 bytes, expected 0 to 16384/.test(e.message));
  });

  it('refuses unknown types, GO_AWAY off stream 0, other frames on stream 0, a zero window increment', () => {
    const cases: [Uint8Array, RegExp][] = [
      [Uint8Array.of(0, 0, 0, 0x09, 0, 0, 0, 1), /frame type 0x9 is unknown/],
      [Uint8Array.of(0, 0, 8, FrameType.GoAway, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0), /GO_AWAY: stream id 1, expected 0/],
      [Uint8Array.of(0, 0, 0, FrameType.Fin, 0, 0, 0, 0), /FIN: stream id 0, expected not 0/],
      [Uint8Array.of(0, 0, 4, FrameType.WindowUpdate, 0, 0, 0, 1, 0, 0, 0, 0), /WINDOW_UPDATE: increment 0/],
      [Uint8Array.of(0, 0, 1, FrameType.Open, 0, 0, 0, 1, 0xff), /OPEN target: not valid UTF-8/],
    ];
    for (const [bytes, message] of cases) {
      assert.throws(() => decodeFrame(bytes), (e: unknown) => isMuxError(e) && message.test((e as Error).message), message.source);
    }
  });

  it('cuts a long reason at a character boundary within the limit', () => {
    const reason = 'é'.repeat(MAX_REASON_LENGTH);
    const frame = decodeFrame(encodeFrame({ type: FrameType.Reset, streamId: 1, errorCode: 8, reason })) as { reason: string };
    assert.equal(frame.reason, 'é'.repeat(MAX_REASON_LENGTH / 2));
  });
});
