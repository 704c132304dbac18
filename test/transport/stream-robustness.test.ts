/**
 * Datagrams that are garbage, cut short, or well-formed but inconsistent with the stream (an
 * ACK of packets never sent, bytes beyond the window, a FIN contradicting received data) are
 * dropped and counted; the transfer they are mixed into completes intact.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DatagramPath } from '../../src/transport/datagram-path.js';
import { MAX_UINT48, PacketType, encodePacket } from '../../src/transport/packet.js';
import { createStream } from '../../src/transport/stream-connection.js';
import { cleanUp, closed, pseudoRandomBytes, readAll, sha256, until, writeAll } from './helpers.js';
import { createLossyLink, seededRandom } from './lossy-link.js';

/** Wraps a path so the test can hand datagrams to whoever listens on it. */
function injectable(path: DatagramPath): DatagramPath & { inject(datagram: Uint8Array): void } {
  const handlers: Array<(datagram: Uint8Array) => void> = [];
  return {
    maxPayload: path.maxPayload,
    send: (datagram) => path.send(datagram),
    onDatagram(handler) {
      handlers.push(handler);
      path.onDatagram(handler);
    },
    inject(datagram) {
      for (const handler of handlers) handler(datagram);
    },
  };
}

function hostileDatagrams(seed: number): Uint8Array[] {
  const random = seededRandom(seed);
  const out: Uint8Array[] = [];
  for (let i = 0; i < 300; i++) {
    const garbage = Buffer.alloc(Math.floor(random() * 1500));
    for (let j = 0; j < garbage.length; j++) garbage[j] = Math.floor(random() * 256);
    if (i % 3 === 0 && garbage.length > 0) garbage[0] = 0x0e; // looks like ours
    out.push(garbage);
  }
  for (let length = 0; length < 22; length++) out.push(Buffer.alloc(length, 0x0e));
  const base = { packetNumber: 5, maxStreamData: 1, ack: undefined };
  // ACK of packet numbers nobody sent.
  out.push(encodePacket({ type: PacketType.Ack, ...base, ack: { ranges: [{ start: 2 ** 40 - 1000, end: 2 ** 40 }], ackDelay: 0 } }));
  // Bytes far beyond any window we offered.
  out.push(encodePacket({ type: PacketType.Data, ...base, packetNumber: 2 ** 30, offset: 2 ** 40, payload: Buffer.from('x'), fin: false, ackNow: true }));
  // A FIN at offset 0, below bytes already received.
  out.push(encodePacket({ type: PacketType.Data, ...base, packetNumber: 2 ** 30 + 1, offset: 0, payload: Buffer.alloc(0), fin: true, ackNow: false }));
  // A window edge at the top of the range must not let the sender run past what it wrote.
  out.push(encodePacket({ type: PacketType.Ping, ...base, packetNumber: 2 ** 30 + 2, maxStreamData: MAX_UINT48 }));
  return out;
}

describe('stream robustness', { timeout: 30_000 }, () => {
  it('drops garbage, short and forged datagrams without crashing and still delivers intact', async (t) => {
    const link = createLossyLink({ seed: 51, loss: 0.05 });
    const pathA = injectable(link.a);
    const pathB = injectable(link.b);
    const a = createStream(pathA);
    const b = createStream(pathB);
    cleanUp(t, a, b);
    const errors: Error[] = [];
    a.on('error', (error) => errors.push(error));
    b.on('error', (error) => errors.push(error));
    const data = pseudoRandomBytes(1024 * 1024, 9);
    const receiving = readAll(b);
    const sending = writeAll(a, data);
    await until(() => b.stats.bytesReceived > 100_000, 'the transfer to be under way');

    const hostile = hostileDatagrams(52);
    for (const datagram of hostile) {
      pathB.inject(datagram);
      pathA.inject(datagram);
    }
    const [received] = await Promise.all([receiving, sending]);
    assert.equal(sha256(received), sha256(data));
    assert.deepEqual(errors, []);
    // Everything hostile was dropped except the forged PING, which is indistinguishable from a real one.
    assert.ok(b.stats.datagramsDropped >= hostile.length - 1, `b dropped ${b.stats.datagramsDropped} of ${hostile.length}`);
    assert.ok(a.stats.datagramsDropped >= hostile.length - 1, `a dropped ${a.stats.datagramsDropped} of ${hostile.length}`);
    b.end();
    a.resume();
    await Promise.all([closed(a), closed(b)]);
  });
});
