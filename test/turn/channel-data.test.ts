import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { acceptedChannel, channelDataLength, decodeChannelData, encodeChannelData } from '../../src/turn/channel-data.js';

describe('acceptedChannel (the relay hot path\'s decodeChannelData, on a range of a batch)', () => {
  const message = Buffer.from(encodeChannelData(0x4001, Buffer.from('hello')));

  it('reads the channel and length of a message inside a larger buffer, as decodeChannelData does alone', () => {
    const slab = Buffer.concat([Buffer.alloc(7, 0xff), message, Buffer.alloc(5, 0xee)]);
    assert.equal(acceptedChannel(slab, 7, 7 + message.length), 0x4001);
    assert.equal(channelDataLength(slab, 7), 5);
    assert.deepEqual(decodeChannelData(message), { channel: 0x4001, data: Buffer.from('hello') });
  });

  it('refuses, as decodeChannelData does, a length beyond the range, a channel outside 0x4000-0x7fff and a range shorter than the header', () => {
    const slab = Buffer.concat([Buffer.alloc(3), message]);
    assert.equal(acceptedChannel(slab, 3, 3 + message.length - 1), -1); // the data is cut short by the range
    assert.equal(acceptedChannel(Buffer.from([0x80, 0x00, 0, 0]), 0, 4), -1);
    assert.equal(acceptedChannel(Buffer.from([0x40, 0x00, 0, 0]), 0, 3), -1);
    // 0x7fff: RFC 5766's range, still accepted from older clients (MAX_CHANNEL_RFC5766).
    assert.equal(acceptedChannel(Buffer.from([0x7f, 0xff, 0, 0]), 0, 4), 0x7fff);
    for (const bytes of [Buffer.from([0x80, 0x00, 0, 0]), Buffer.from([0x40, 0x00, 0, 9])]) {
      assert.equal(decodeChannelData(bytes), undefined);
      assert.equal(acceptedChannel(bytes), -1);
    }
  });
});
