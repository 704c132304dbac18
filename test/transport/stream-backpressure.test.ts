import assert from 'node:assert/strict';
import { once } from '../support/wait.js';
import { describe, it } from 'node:test';
import { createStream } from '../../src/transport/stream-connection.js';
import { cleanUp, closed, pseudoRandomBytes, sha256, until } from './helpers.js';
import { createLossyLink } from './lossy-link.js';

const KiB = 1024;

describe('stream backpressure', { timeout: 30_000 }, () => {
  it('bounds sender and receiver memory by the windows while the reader is slow', async (t) => {
    const link = createLossyLink({ seed: 21, loss: 0.02 });
    const window = 64 * KiB;
    const highWaterMark = 16 * KiB;
    const sender = createStream(link.a, { sendBufferSize: window, writableHighWaterMark: highWaterMark });
    const receiver = createStream(link.b, { receiveWindow: window, readableHighWaterMark: highWaterMark });
    cleanUp(t, sender, receiver);
    const data = pseudoRandomBytes(2 * 1024 * KiB, 6);
    let senderPeak = 0;
    let receiverPeak = 0;
    const measure = (): void => {
      senderPeak = Math.max(senderPeak, sender.writableLength + sender.stats.sendBuffered);
      receiverPeak = Math.max(receiverPeak, receiver.readableLength + receiver.stats.receiveBuffered);
    };

    const writing = (async () => {
      for (let at = 0; at < data.length; at += highWaterMark) {
        measure();
        if (!sender.write(data.subarray(at, at + highWaterMark))) await once(sender, 'drain');
      }
      sender.end();
    })();

    // Nobody reads yet: the receive window fills, the peer's window closes, write() says wait.
    await until(
      () => sender.stats.peerWindow === 0 && sender.stats.bytesAcked === window && sender.writableNeedDrain,
      'the sender to stall on the closed window',
    );
    measure();
    assert.equal(receiver.stats.receiveBuffered, window, 'the receiver holds exactly one window');
    assert.ok(sender.stats.bytesSent <= window, `sent ${sender.stats.bytesSent} bytes, at most one window`);

    // Now a slow reader: one chunk per turn of the event loop.
    const chunks: Buffer[] = [];
    const ended = once(receiver, 'end');
    receiver.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      measure();
      receiver.pause();
      setImmediate(() => receiver.resume());
    });
    await Promise.all([ended, writing]);
    assert.equal(sha256(Buffer.concat(chunks)), sha256(data));
    // Send buffer + one chunk admitted past it + the Writable's own buffer (high-water mark + one chunk).
    assert.ok(senderPeak <= window + 3 * highWaterMark, `sender held ${senderPeak} bytes`);
    // Receive window + what was pushed into the Readable (high-water mark + one packet).
    assert.ok(receiverPeak <= window + highWaterMark + 1200, `receiver held ${receiverPeak} bytes`);
    receiver.end();
    sender.resume();
    await Promise.all([closed(sender), closed(receiver)]);
  });
});
