import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SentPackets } from '../../src/transport/sent-packets.js';

function sendPackets(sent: SentPackets, count: number, at: (i: number) => number = () => 0): void {
  for (let i = 0; i < count; i++) {
    const packetNumber = sent.allocate();
    sent.onSent({ packetNumber, sentAt: at(i), size: 100, offset: i * 100, length: 100, fin: false });
  }
}

describe('SentPackets loss detection', () => {
  it('acknowledges exactly the packets an ACK covers for the first time', () => {
    const sent = new SentPackets();
    sendPackets(sent, 10);
    const first = sent.onAck([{ start: 5, end: 8 }, { start: 0, end: 2 }]);
    assert.deepEqual(first.acked.map((p) => p.packetNumber), [0, 1, 5, 6, 7]);
    const again = sent.onAck([{ start: 0, end: 9 }]);
    assert.deepEqual(again.acked.map((p) => p.packetNumber), [2, 3, 4, 8]);
    assert.equal(sent.bytesInFlight, 100);
  });

  it('cuts back ranges that acknowledge packets never sent', () => {
    const sent = new SentPackets();
    sendPackets(sent, 3);
    const result = sent.onAck([{ start: 0, end: 1000 }]);
    assert.equal(result.clipped, true);
    assert.equal(result.acked.length, 3);
    assert.equal(sent.largestAcked, 2);
  });

  it('declares a packet lost once a packet numbered 3 or more above it is acknowledged (DupThresh)', () => {
    const sent = new SentPackets();
    sendPackets(sent, 5, (i) => i);
    sent.onAck([{ start: 2, end: 3 }]);
    assert.deepEqual(sent.detectLosses(5, 1000).lost, []);
    sent.onAck([{ start: 3, end: 4 }]);
    assert.deepEqual(sent.detectLosses(5, 1000).lost.map((p) => p.packetNumber), [0]);
    sent.onAck([{ start: 4, end: 5 }]);
    assert.deepEqual(sent.detectLosses(5, 1000).lost.map((p) => p.packetNumber), [1]);
  });

  it('declares a packet lost after 9/8 RTT once a later one is acknowledged (RACK), and says when', () => {
    const sent = new SentPackets();
    sendPackets(sent, 3, (i) => i * 10);
    sent.onAck([{ start: 2, end: 3 }]);
    const early = sent.detectLosses(25, 20);
    assert.deepEqual(early.lost.map((p) => p.packetNumber), [0]);
    assert.equal(early.lossTime, 10 + 20);
    const later = sent.detectLosses(30, 20);
    assert.deepEqual(later.lost.map((p) => p.packetNumber), [1]);
  });

  it('finds a lost retransmission like any other loss, because it has a new packet number', () => {
    const sent = new SentPackets();
    sendPackets(sent, 1);
    const [original] = sent.declareAllLost();
    assert.equal(original!.packetNumber, 0);
    sendPackets(sent, 5); // 1 carries the retransmission, 2..5 new data
    sent.onAck([{ start: 2, end: 6 }]);
    assert.deepEqual(sent.detectLosses(0, 1000).lost.map((p) => p.packetNumber), [1]);
    // The late ACK of the original changes nothing: it is resolved already.
    assert.deepEqual(sent.onAck([{ start: 0, end: 1 }]).acked, []);
  });
});
