import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DatagramPath } from '../../src/transport/datagram-path.js';
import { TransportError } from '../../src/transport/errors.js';
import { createStream } from '../../src/transport/stream-connection.js';
import { decodePacket, PacketType } from '../../src/transport/packet.js';
import { cleanUp, closed, framedPath, pseudoRandomBytes, readAll, sha256, until, writeAll } from './helpers.js';
import { createLossyLink } from './lossy-link.js';
import { once } from '../support/wait.js';

const HEADROOM = 5;

describe('stream over a path with sendBatch', { timeout: 30_000 }, () => {
  it('hands bursts of DATA packets to sendBatch in order, and delivers every byte over a lossy link', async (t) => {
    const link = createLossyLink({ seed: 77, loss: 0.03, reorder: 0.01 });
    const pathA = framedPath(link.a, HEADROOM, { batch: true });
    const pathB = framedPath(link.b, HEADROOM, { batch: true });
    const a = createStream(pathA);
    const b = createStream(pathB);
    cleanUp(t, a, b);
    const data = pseudoRandomBytes(1 << 20, 12);
    const [received] = await Promise.all([readAll(b), writeAll(a, data)]);
    assert.equal(sha256(received), sha256(data));
    assert.ok(pathA.counts.batches > 10, `batches: ${JSON.stringify(pathA.counts)}`);
    assert.ok(pathA.counts.batched > pathA.counts.batches, 'a batch holds more than one datagram');
    assert.ok(pathA.counts.largestBatch <= 64, `at most MAX_BURST per batch, got ${pathA.counts.largestBatch}`);
    assert.ok(pathB.counts.send > 0, 'ACKs still go through send()');
    assert.equal(a.stats.packetsSent, pathA.counts.send + pathA.counts.sendWithHeadroom + pathA.counts.batched);
    b.end();
    a.resume();
    await Promise.all([closed(a), closed(b)]);
  });

  it('sends one burst as one batch with ascending packet numbers', async (t) => {
    const sent: Uint8Array[][] = [];
    const path: DatagramPath = {
      maxPayload: 1200,
      headroom: HEADROOM,
      send: () => {},
      sendWithHeadroom: (buffer) => sent.push([buffer]),
      sendBatch: (buffers) => sent.push(buffers),
      onDatagram: () => {},
    };
    const a = createStream(path, { idleTimeout: 0, keepaliveInterval: 0 });
    cleanUp(t, a);
    a.write(Buffer.alloc(20_000)); // more than the initial window of 10 packets
    await until(() => sent.length > 0, 'the first burst');
    assert.equal(sent.length, 1, 'the initial window goes out in one call');
    const numbers = sent[0]!.map((buffer) => {
      const packet = decodePacket(buffer.subarray(HEADROOM));
      assert.equal(packet.type, PacketType.Data);
      return packet.packetNumber;
    });
    assert.equal(numbers.length, 10);
    assert.deepEqual(numbers, [...numbers].sort((x, y) => x - y));
    a.destroy();
  });

  it('destroys the stream with a TransportError when sendBatch throws', async (t) => {
    const path: DatagramPath = {
      maxPayload: 1200,
      send: () => {},
      sendBatch: () => { throw new Error('socket is closed'); },
      onDatagram: () => {},
    };
    const a = createStream(path, { idleTimeout: 0, keepaliveInterval: 0 });
    cleanUp(t, a);
    const failed = once(a, 'error');
    a.write(Buffer.alloc(20_000));
    const [error] = await failed;
    assert.ok(error instanceof TransportError);
    assert.match(error.message, /path\.sendBatch failed: socket is closed/);
  });
});
