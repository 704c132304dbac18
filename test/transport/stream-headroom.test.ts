import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TransportError } from '../../src/transport/errors.js';
import { createStream } from '../../src/transport/stream-connection.js';
import { cleanUp, closed, framedPath, pseudoRandomBytes, readAll, sha256, writeAll } from './helpers.js';
import { createLossyLink } from './lossy-link.js';

const HEADROOM = 3;

describe('stream over a path with headroom', { timeout: 30_000 }, () => {
  it('sends DATA packets through sendWithHeadroom, within maxPayload, and delivers every byte', async (t) => {
    const link = createLossyLink({ seed: 51, loss: 0.03, maxPayload: 1195 });
    const pathA = framedPath(link.a, HEADROOM);
    const pathB = framedPath(link.b, HEADROOM);
    const a = createStream(pathA);
    const b = createStream(pathB);
    cleanUp(t, a, b);
    const data = pseudoRandomBytes(1 << 20, 9);
    const [received] = await Promise.all([readAll(b), writeAll(a, data)]);
    assert.equal(sha256(received), sha256(data));
    assert.ok(pathA.counts.sendWithHeadroom > 800, `DATA packets with headroom: ${pathA.counts.sendWithHeadroom}`);
    assert.ok(pathA.counts.largestDatagram <= 1195, `largest datagram ${pathA.counts.largestDatagram}`);
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
