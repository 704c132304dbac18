import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createStream } from '../../src/transport/stream-connection.js';
import { cleanUp, closed, pseudoRandomBytes, readAll, sha256, writeAll } from './helpers.js';
import { createLossyLink } from './lossy-link.js';

const MiB = 1024 * 1024;

describe('stream over a lossy in-process link', { timeout: 60_000 }, () => {
  it('delivers 8 MiB intact with 10% loss in each direction', async (t) => {
    const link = createLossyLink({ seed: 0x1234, loss: 0.1, reorder: 0.02, duplicate: 0.01 });
    const sender = createStream(link.a);
    const receiver = createStream(link.b);
    cleanUp(t, sender, receiver);
    const data = pseudoRandomBytes(8 * MiB, 1);
    const started = performance.now();
    const [received] = await Promise.all([readAll(receiver), writeAll(sender, data)]);
    const seconds = (performance.now() - started) / 1000;

    assert.equal(received.length, data.length);
    assert.equal(sha256(received), sha256(data));
    const stats = sender.stats;
    t.diagnostic(
      `${seconds.toFixed(2)} s; link dropped ${link.stats.aToB.dropped} + ${link.stats.bToA.dropped}; ` +
        `retransmits ${stats.retransmits}, probes ${stats.tailLossProbes}, RTOs ${stats.retransmissionTimeouts}`,
    );
    assert.ok(link.stats.aToB.dropped > 0 && link.stats.bToA.dropped > 0, 'the link dropped in both directions');
    assert.ok(stats.retransmits > 0, 'losses were repaired by retransmission');
    assert.equal(stats.bytesSent, data.length, 'every byte was sent once as new data');

    receiver.end();
    sender.resume();
    await Promise.all([closed(sender), closed(receiver)]);
  });

  it('carries 1 MiB in both directions at once with 10% loss', async (t) => {
    const link = createLossyLink({ seed: 99, loss: 0.1, reorder: 0.05 });
    const a = createStream(link.a);
    const b = createStream(link.b);
    cleanUp(t, a, b);
    const fromA = pseudoRandomBytes(MiB, 2);
    const fromB = pseudoRandomBytes(MiB, 3);
    const [atB, atA] = await Promise.all([readAll(b), readAll(a), writeAll(a, fromA, { chunkSize: 10_000 }), writeAll(b, fromB)]);
    assert.equal(sha256(atB), sha256(fromA));
    assert.equal(sha256(atA), sha256(fromB));
    await Promise.all([closed(a), closed(b)]);
    assert.equal(a.destroyed && b.destroyed, true);
  });
});
