import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamFramer } from '../../src/stun/framing.js';
import { StunDecodeError } from '../../src/errors.js';
import { encodeMessage, Method, MessageClass, newTransactionId, AttrType, software } from '../../src/wire/index.js';

const message = (text: string): Uint8Array => encodeMessage({
  method: Method.Binding, messageClass: MessageClass.Request, transactionId: newTransactionId(),
  attributes: [{ type: AttrType.Software, value: software.encode(text) }],
});

test('splits back-to-back STUN messages delivered one byte at a time', () => {
  const a = message('first');
  const b = message('second message');
  const stream = Buffer.concat([a, b]);
  const framer = new StreamFramer();
  const out: Uint8Array[] = [];
  for (const byte of stream) out.push(...framer.push(Uint8Array.of(byte)));
  assert.deepEqual(out.map((f) => Buffer.from(f)), [Buffer.from(a), Buffer.from(b)]);
});

test('frames ChannelData padded to four bytes (RFC 8656 §12.5)', () => {
  const channelData = Buffer.from([0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0]);
  const framer = new StreamFramer();
  const frames = framer.push(Buffer.concat([channelData, message('x')]));
  assert.equal(frames.length, 2);
  assert.equal(frames[0]!.byteLength, 12);
});

test('rejects bytes that start no frame, and frames over the limit', () => {
  assert.throws(() => new StreamFramer().push(Buffer.from([0xff, 0, 0, 0])), (e: unknown) => e instanceof StunDecodeError && e.code === 'ERR_STUN_DECODE' && /neither a STUN message/.test(e.message));
  assert.throws(() => new StreamFramer({ maxFrame: 100 }).push(Buffer.from([0x00, 0x01, 0x01, 0x00])), /exceeds the 100-byte limit/);
  assert.throws(() => new StreamFramer().push(Buffer.from([0x00, 0x01, 0x00, 0x03])), /not a multiple of 4/);
});
