import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DatagramPath } from '../../src/transport/datagram-path.js';
import { createStream } from '../../src/transport/stream-connection.js';
import { cleanUp, closed, pseudoRandomBytes, readAll, sha256, until, writeAll } from './helpers.js';
import { createLossyLink } from './lossy-link.js';

const MiB = 1024 * 1024;

/** Wraps a path to record the largest datagram sent on it. */
function measured(path: DatagramPath): DatagramPath & { largest: number } {
  const wrapper = {
    largest: 0,
    maxPayload: path.maxPayload,
    send(datagram: Uint8Array) {
      wrapper.largest = Math.max(wrapper.largest, datagram.length);
      path.send(datagram);
    },
    onDatagram: (handler: (datagram: Uint8Array) => void) => path.onDatagram(handler),
  };
  return wrapper;
}

describe('stream path migration', { timeout: 30_000 }, () => {
  it('moves mid-transfer to a new path with a smaller datagram size without losing a byte', async (t) => {
    const relay = createLossyLink({ seed: 31, loss: 0.05 });
    const direct = createLossyLink({ seed: 32, loss: 0.05, maxPayload: 600 });
    const directA = measured(direct.a);
    const directB = measured(direct.b);
    const a = createStream(relay.a);
    const b = createStream(relay.b);
    cleanUp(t, a, b);
    const data = pseudoRandomBytes(2 * MiB, 7);
    const paths: DatagramPath[] = [];
    a.on('datagram-path', (path: DatagramPath) => paths.push(path));

    const receiving = readAll(b);
    const sending = writeAll(a, data);
    await until(() => b.stats.bytesReceived >= MiB / 2, 'half a MiB to arrive over the first path');
    a.setPath(directA);
    b.setPath(directB);
    relay.cut();
    const [received] = await Promise.all([receiving, sending]);

    assert.equal(sha256(received), sha256(data));
    assert.deepEqual(paths, [directA]);
    assert.equal(a.datagramPath, directA);
    assert.equal(a.stats.pathChanges, 1);
    assert.ok(directA.largest > 0 && directA.largest <= 600, `largest datagram on the new path: ${directA.largest}`);
    assert.ok(directB.largest <= 600);
    b.end();
    a.resume();
    await Promise.all([closed(a), closed(b)]);
  });

  it('survives the two ends switching at different moments', async (t) => {
    const first = createLossyLink({ seed: 41, loss: 0.02 });
    const second = createLossyLink({ seed: 42, loss: 0.02 });
    const a = createStream(first.a);
    const b = createStream(first.b);
    cleanUp(t, a, b);
    const data = pseudoRandomBytes(MiB, 8);
    const receiving = readAll(b);
    const sending = writeAll(a, data);
    await until(() => b.stats.bytesReceived >= MiB / 4, 'a quarter MiB over the first path');
    // a moves first; what it sends on the new path finds nobody until b moves too.
    a.setPath(second.a);
    await until(() => second.stats.aToB.sent >= 5, 'a to send on the new path');
    b.setPath(second.b);
    first.cut();
    const [received] = await Promise.all([receiving, sending]);
    assert.equal(sha256(received), sha256(data));
    b.end();
    a.resume();
    await Promise.all([closed(a), closed(b)]);
  });
});
