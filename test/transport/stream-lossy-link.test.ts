import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createStream } from '../../src/transport/stream-connection.js';
import { pseudoRandomBytes, readAll, sha256, writeAll } from './helpers.js';
import { createLossyLink } from './lossy-link.js';

const MiB = 1024 * 1024;

describe('stream over a lossy in-process link', { timeout: 60_000 }, () => {
  it('delivers 8 MiB intact with 10% loss in each direction', async () => {
    const link = createLossyLink({ seed: 0x1234, loss: 0.1, reorder: 0.02, duplicate: 0.01 });
    const sender = createStream(link.a);
    const receiver = createStream(link.b);
    const data = pseudoRandomBytes(8 * MiB, 1);
    const started = performance.now();
    const [received] = await Promise.all([readAll(receiver), writeAll(sender, data)]);
    const seconds = (performance.now() - started) / 1000;
    assert.equal(received.length, data.length);
    assert.equal(sha256(received), sha256(data));
    const stats = sender.stats;
    console.log(`8 MiB at 10% loss: ${seconds.toFixed(2)} s, retransmits ${stats.retransmits}, RTOs ${stats.retransmissionTimeouts}, TLPs ${stats.tailLossProbes}, lost ${stats.packetsLost}, cwnd ${stats.cwnd}, rtt ${stats.rtt?.toFixed(3)}`);
    assert.ok(stats.retransmits > 0, 'a 10% lossy link must cause retransmissions');
    assert.ok(link.stats.aToB.dropped > 0 && link.stats.bToA.dropped > 0);
    receiver.end();
    sender.resume();
    await Promise.all([new Promise((r) => sender.once('close', r)), new Promise((r) => receiver.once('close', r))]);
  });
});
