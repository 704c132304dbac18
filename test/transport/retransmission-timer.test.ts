import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RetransmissionTimer } from '../../src/transport/retransmission-timer.js';

describe('RetransmissionTimer (RFC 6298)', () => {
  it('starts at the initial RTO of 1 s before any sample (§2.1)', () => {
    assert.equal(new RetransmissionTimer().rto, 1000);
  });

  it('sets SRTT = R and RTTVAR = R/2 on the first sample (§2.2)', () => {
    const timer = new RetransmissionTimer({ minRto: 0 });
    timer.sample(100);
    assert.equal(timer.srtt, 100);
    assert.equal(timer.rttvar, 50);
    assert.equal(timer.rto, 100 + 4 * 50);
  });

  it('updates RTTVAR with the old SRTT, then SRTT, with alpha 1/8 and beta 1/4 (§2.3)', () => {
    const timer = new RetransmissionTimer({ minRto: 0 });
    timer.sample(100);
    timer.sample(200);
    const rttvar = 0.75 * 50 + 0.25 * Math.abs(100 - 200);
    const srtt = 0.875 * 100 + 0.125 * 200;
    assert.equal(timer.rttvar, rttvar);
    assert.equal(timer.srtt, srtt);
    assert.equal(timer.rto, srtt + 4 * rttvar);
  });

  it('never goes below the clock granularity term or the configured floor (§2.3, §2.4)', () => {
    const timer = new RetransmissionTimer({ minRto: 0, granularity: 5 });
    timer.sample(10);
    for (let i = 0; i < 50; i++) timer.sample(10);
    assert.ok(timer.rto >= 10 + 5);
    const floored = new RetransmissionTimer({ minRto: 200 });
    floored.sample(1);
    assert.equal(floored.rto, 200);
  });

  it('doubles on each expiry up to the maximum and keeps the back-off until a new sample (§5.5, Karn)', () => {
    const timer = new RetransmissionTimer({ minRto: 0, maxRto: 5000 });
    timer.sample(100);
    const base = timer.rto;
    timer.backOff();
    assert.equal(timer.rto, 2 * base);
    timer.backOff();
    assert.equal(timer.rto, 4 * base);
    for (let i = 0; i < 10; i++) timer.backOff();
    assert.equal(timer.rto, 5000);
    timer.sample(100);
    assert.equal(timer.backoffCount, 0);
    assert.ok(timer.rto < 5000);
  });

  it('removes the peer-reported ACK delay unless that would go below the minimum RTT (RFC 9002 §5.3)', () => {
    const timer = new RetransmissionTimer({ minRto: 0 });
    timer.sample(50);
    timer.sample(80, 25);
    assert.equal(timer.srtt, 0.875 * 50 + 0.125 * 55);
    const other = new RetransmissionTimer({ minRto: 0 });
    other.sample(50);
    other.sample(60, 25);
    assert.equal(other.srtt, 0.875 * 50 + 0.125 * 60);
  });
});
