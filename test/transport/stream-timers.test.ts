/**
 * Timer rules, driven by a fake clock and a hand-driven peer, so every deadline is exact.
 */
import assert from 'node:assert/strict';
import { once } from '../support/wait.js';
import { describe, it } from 'node:test';
import { StreamTimeoutError } from '../../src/transport/errors.js';
import { PacketType, type StreamPacket } from '../../src/transport/packet.js';
import { INITIAL_MAX_STREAM_DATA, createStream } from '../../src/transport/stream-connection.js';
import { FakeClock } from './fake-clock.js';
import { ManualPeer, nextTurn } from './manual-peer.js';

const WINDOW = 1 << 20;

function data(packetNumber: number, offset: number, length: number, ackNow = false): StreamPacket {
  return { type: PacketType.Data, packetNumber, maxStreamData: WINDOW, ack: undefined, offset, payload: Buffer.alloc(length, 1), fin: false, ackNow };
}

function ack(ranges: Array<[number, number]>, maxStreamData = WINDOW): StreamPacket {
  return {
    type: PacketType.Ack,
    packetNumber: 0,
    maxStreamData,
    ack: { ranges: ranges.map(([start, end]) => ({ start, end })), ackDelay: 0 },
  };
}

describe('stream timers', () => {
  it('retransmits on the RFC 6298 schedule, doubling the RTO, until the idle timeout aborts', async () => {
    const clock = new FakeClock();
    const peer = new ManualPeer();
    const stream = createStream(peer.path, { clock });
    stream.write('x');
    await peer.waitForSent(1);
    const sendTimes = [clock.now()];
    for (const gap of [1000, 2000, 4000, 8000]) {
      clock.advance(gap - 1);
      assert.equal(peer.sent.length, sendTimes.length, `nothing before ${clock.now() + 1} ms`);
      clock.advance(1);
      assert.equal(peer.sent.length, sendTimes.length + 1, `a retransmission at ${clock.now()} ms`);
      sendTimes.push(clock.now());
    }
    assert.deepEqual(sendTimes, [0, 1000, 3000, 7000, 15000]);
    for (const packet of peer.sent) {
      assert.equal(packet.type, PacketType.Data);
      assert.equal(packet.type === PacketType.Data && packet.offset, 0);
    }
    // Every retransmission has a new packet number (no ambiguity for Karn's algorithm).
    assert.deepEqual(peer.sent.map((p) => p.packetNumber), [0, 1, 2, 3, 4]);
    assert.equal(stream.stats.retransmissionTimeouts, 4);

    const errored = once(stream, 'error');
    clock.advance(15_000);
    const [error] = (await errored) as [StreamTimeoutError];
    assert.ok(error instanceof StreamTimeoutError);
    assert.equal(error.code, 'ERR_TRANSPORT_TIMEOUT');
    assert.match(error.message, /nothing heard from the peer for 30000 ms/);
    assert.equal(peer.sent.at(-1)!.type, PacketType.Reset, 'the peer is told with a RESET');
  });

  it('holds a lone ACK for maxAckDelay, answers every second packet and any out-of-order one at once', async () => {
    const clock = new FakeClock();
    const peer = new ManualPeer();
    createStream(peer.path, { clock, maxAckDelay: 25 }).resume();

    peer.deliver(data(0, 0, 100));
    await nextTurn();
    assert.equal(peer.sent.length, 0, 'one packet: the ACK waits');
    clock.advance(24);
    assert.equal(peer.sent.length, 0);
    clock.advance(1);
    assert.equal(peer.sent.length, 1, 'sent when maxAckDelay expires');
    const delayed = peer.sent[0]!;
    assert.equal(delayed.type, PacketType.Ack);
    assert.deepEqual(delayed.ack, { ranges: [{ start: 0, end: 1 }], ackDelay: 25_000 });

    peer.deliver(data(1, 100, 100));
    peer.deliver(data(2, 200, 100));
    await nextTurn();
    assert.equal(peer.sent.length, 2, 'the second packet makes the ACK due');
    assert.deepEqual(peer.sent[1]!.ack!.ranges, [{ start: 0, end: 3 }]);

    peer.deliver(data(4, 400, 100));
    await nextTurn();
    assert.equal(peer.sent.length, 3, 'a gap is reported at once');
    assert.deepEqual(peer.sent[2]!.ack!.ranges, [{ start: 4, end: 5 }, { start: 0, end: 3 }]);

    peer.deliver(data(5, 500, 100, true));
    await nextTurn();
    assert.equal(peer.sent.length, 4, 'ACK-NOW is answered at once');
  });

  it('sends a PING after keepaliveInterval of silence, and an answered PING keeps the stream alive', async () => {
    const clock = new FakeClock();
    const peer = new ManualPeer();
    const stream = createStream(peer.path, { clock, keepaliveInterval: 10_000, idleTimeout: 30_000 });
    clock.advance(9_999);
    assert.equal(peer.sent.length, 0);
    clock.advance(1);
    assert.equal(peer.sent.length, 1);
    assert.equal(peer.sent[0]!.type, PacketType.Ping);
    peer.deliver(ack([[0, 1]]));
    clock.advance(25_000);
    assert.equal(stream.destroyed, false, 'heard from the peer at 10 s, so alive at 35 s');
    assert.ok(peer.sent.filter((p) => p.type === PacketType.Ping).length >= 2, 'another PING after 10 s more silence');
    stream.destroy();
  });

  it('probes a tail loss after 2·SRTT with two packets before the RTO would fire (RFC 8985 §7)', async () => {
    const clock = new FakeClock();
    const peer = new ManualPeer();
    const stream = createStream(peer.path, { clock, pacing: false });
    stream.write(Buffer.alloc(3000, 7));
    await peer.waitForSent(3);
    clock.advance(10);
    peer.deliver(ack([[0, 1]])); // SRTT = 10 ms; packets 1 and 2 unanswered
    await nextTurn();
    assert.equal(stream.stats.rtt, 10);
    assert.equal(peer.sent.length, 3);
    clock.advance(9); // 2·SRTT after the last send (t = 0) is t = 20
    assert.equal(peer.sent.length, 3);
    clock.advance(1);
    assert.equal(peer.sent.length, 5, 'two probes');
    const [first, second] = peer.sent.slice(3);
    assert.equal(first!.type, PacketType.Data);
    assert.equal(first!.type === PacketType.Data && first.offset, (peer.sent[2] as { offset: number }).offset, 'the newest bytes again');
    assert.equal(first!.type === PacketType.Data && first.ackNow, true);
    assert.equal(second!.type, PacketType.Ping);
    assert.equal(stream.stats.tailLossProbes, 1);
    assert.equal(stream.stats.retransmissionTimeouts, 0);
    assert.equal(stream.stats.cwnd, 12_000, 'a probe does not shrink the window');

    // The probes are acknowledged; packet 1 is now 3 below the largest acked: lost, sent again.
    peer.deliver(ack([[2, 5], [0, 1]]));
    await nextTurn();
    const resent = peer.sent[5]!;
    assert.equal(resent.type === PacketType.Data && resent.offset, (peer.sent[1] as { offset: number }).offset);
    assert.equal(stream.stats.packetsLost, 1);
    stream.destroy();
  });

  it('probes a closed receive window with PING after the RTO and resumes when it opens (RFC 9293 §3.8.6.1)', async () => {
    const clock = new FakeClock();
    const peer = new ManualPeer();
    const stream = createStream(peer.path, { clock, pacing: false, initialCongestionWindow: 20 });
    stream.write(Buffer.alloc(3 * INITIAL_MAX_STREAM_DATA, 3));
    // It may send only the initial credit before hearing the peer's window.
    await nextTurn();
    const firstFlight = peer.sent.length;
    const sentBytes = peer.sent.reduce((sum, p) => sum + (p.type === PacketType.Data ? p.payload.length : 0), 0);
    assert.equal(sentBytes, INITIAL_MAX_STREAM_DATA);
    clock.advance(10);
    peer.deliver(ack([[0, firstFlight]], INITIAL_MAX_STREAM_DATA)); // all received, window still shut
    await nextTurn();
    assert.equal(peer.sent.length, firstFlight, 'nothing more while the window is shut');
    clock.advance(stream.stats.rto);
    assert.equal(peer.sent.length, firstFlight + 1);
    assert.equal(peer.sent.at(-1)!.type, PacketType.Ping, 'a window probe');
    peer.deliver(ack([[0, firstFlight + 1]], 3 * INITIAL_MAX_STREAM_DATA));
    await nextTurn();
    const more = peer.sent.slice(firstFlight + 1).filter((p) => p.type === PacketType.Data);
    assert.ok(more.length > 0, 'sending resumes once the window opens');
    assert.equal((more[0] as { offset: number }).offset, INITIAL_MAX_STREAM_DATA);
    stream.destroy();
  });
});
