import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DatagramPath } from '../../src/transport/datagram-path.js';
import { TransportError } from '../../src/transport/errors.js';
import { createStream } from '../../src/transport/stream-connection.js';
import { cleanUp, closed, pseudoRandomBytes, readAll, sha256, writeAll } from './helpers.js';
import { createLossyLink } from './lossy-link.js';

const HEADROOM = 3;

/** A path that puts a 3-byte header in front of each datagram, as src/peer/udp-path.ts does. */
function framed(path: DatagramPath) {
  const counts = { send: 0, sendWithHeadroom: 0, largest: 0 };
  const wrapper: DatagramPath & { counts: typeof counts } = {
    counts,
    maxPayload: path.maxPayload,
    headroom: HEADROOM,
    send(datagram) {
      counts.send++;
      counts.largest = Math.max(counts.largest, datagram.length);
      path.send(datagram);
    },
    sendWithHeadroom(buffer) {
      counts.sendWithHeadroom++;
      assert.ok(buffer.length > HEADROOM);
      buffer.fill(0xee, 0, HEADROOM); // the path's header: must not disturb the packet behind it
      const datagram = buffer.subarray(HEADROOM);
      counts.largest = Math.max(counts.largest, datagram.length);
      path.send(datagram);
    },
    onDatagram: (handler) => path.onDatagram(handler),
  };
  return wrapper;
}

describe('stream over a path with headroom', { timeout: 30_000 }, () => {
  it('sends DATA packets through sendWithHeadroom, within maxPayload, and delivers every byte', async (t) => {
    const link = createLossyLink({ seed: 51, loss: 0.03, maxPayload: 1195 });
    const pathA = framed(link.a);
    const pathB = framed(link.b);
    const a = createStream(pathA);
    const b = createStream(pathB);
    cleanUp(t, a, b);
    const data = pseudoRandomBytes(1 << 20, 9);
    const [received] = await Promise.all([readAll(b), writeAll(a, data)]);
    assert.equal(sha256(received), sha256(data));
    assert.ok(pathA.counts.sendWithHeadroom > 800, `DATA packets with headroom: ${pathA.counts.sendWithHeadroom}`);
    assert.ok(pathA.counts.largest <= 1195, `largest datagram ${pathA.counts.largest}`);
    assert.ok(pathB.counts.send > 0, 'ACKs still go through send()');
    b.end();
    a.resume();
    await Promise.all([closed(a), closed(b)]);
  });

  it('refuses a negative or fractional headroom', () => {
    const link = createLossyLink({ seed: 1 });
    for (const headroom of [-1, 1.5]) {
      assert.throws(() => createStream({ ...link.a, headroom, sendWithHeadroom: () => {} }), (error: unknown) => {
        assert.ok(error instanceof TransportError);
        assert.match(error.message, new RegExp(`headroom ${headroom}, expected an integer >= 0`));
        return true;
      });
    }
  });
});
