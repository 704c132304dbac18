import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NewReno } from '../../src/transport/new-reno.js';

const MSS = 1200;

describe('NewReno congestion control', () => {
  it('starts with the RFC 6928 initial window of min(10·MSS, max(2·MSS, 14600))', () => {
    assert.equal(new NewReno({ maxDatagramSize: MSS }).cwnd, Math.min(10 * MSS, Math.max(2 * MSS, 14_600)));
    assert.equal(new NewReno({ maxDatagramSize: 1460 }).cwnd, 14_600);
  });

  it('grows by the acknowledged bytes in slow start', () => {
    const cc = new NewReno({ maxDatagramSize: MSS });
    const before = cc.cwnd;
    cc.onPacketAcked(0, MSS, true);
    assert.equal(cc.cwnd, before + MSS);
  });

  it('does not grow while the sender is not using the window (RFC 7661)', () => {
    const cc = new NewReno({ maxDatagramSize: MSS });
    const before = cc.cwnd;
    cc.onPacketAcked(0, MSS, false);
    assert.equal(cc.cwnd, before);
  });

  it('halves on loss to max(FlightSize/2, 2·MSS) and reduces once per window (RFC 5681 §3.2, RFC 6582)', () => {
    const cc = new NewReno({ maxDatagramSize: MSS });
    cc.onPacketsLost(5, 40 * MSS, 20);
    assert.equal(cc.ssthresh, 20 * MSS);
    assert.equal(cc.cwnd, 20 * MSS);
    // Another loss from the same flight (packet <= recover 20) is the same congestion event.
    cc.onPacketsLost(12, 30 * MSS, 25);
    assert.equal(cc.cwnd, 20 * MSS);
    assert.equal(cc.congestionEvents, 1);
    // Acks of packets sent before the reduction do not grow the window during recovery.
    cc.onPacketAcked(15, MSS, true);
    assert.equal(cc.cwnd, 20 * MSS);
    // A loss of a packet sent after recovery began is a new event.
    cc.onPacketsLost(21, 20 * MSS, 40);
    assert.equal(cc.cwnd, 10 * MSS);
    assert.equal(cc.congestionEvents, 2);
  });

  it('grows by one MSS per window of acknowledged bytes in congestion avoidance', () => {
    const cc = new NewReno({ maxDatagramSize: MSS });
    cc.onPacketsLost(0, 20 * MSS, 0);
    const cwnd = cc.cwnd;
    assert.equal(cc.inSlowStart, false);
    for (let pn = 1; pn <= cwnd / MSS; pn++) cc.onPacketAcked(pn, MSS, true);
    assert.equal(cc.cwnd, cwnd + MSS);
  });

  it('collapses to one MSS on a retransmission timeout (RFC 5681 §3.1 loss window)', () => {
    const cc = new NewReno({ maxDatagramSize: MSS });
    cc.onRetransmissionTimeout(8 * MSS, 10);
    assert.equal(cc.cwnd, MSS);
    assert.equal(cc.ssthresh, 4 * MSS);
  });
});
