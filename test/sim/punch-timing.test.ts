import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runUdpPunch, timeToNomination } from '../../src/sim/punch-scenario.js';

/**
 * How long punching takes to nominate, in virtual time. Bounds are loose on purpose: at least
 * one and a half round trips (a check must come back before the controlling side nominates,
 * and the nomination must reach the other side), at most a few round trips plus pacing
 * (src/punch/udp-checks.ts: PACING_MS, NOMINATION_WAIT_MS). bench/ reports the figures.
 */

for (const rttMs of [50, 200]) {
  test(`port-restricted × port-restricted nominates within a few round trips at ${rttMs} ms RTT`, async () => {
    const ms = await timeToNomination({ rttMs });
    assert.ok(ms >= 1.5 * rttMs, `${ms} ms at ${rttMs} ms RTT`);
    assert.ok(ms <= 4 * rttMs + 250, `${ms} ms at ${rttMs} ms RTT`);
  });
}

for (const rttMs of [50, 200]) {
  test(`a best-possible first success is nominated at once: two round trips at ${rttMs} ms RTT`, async () => {
    // Host check (b1's private address: never answers) and the srflx check leave together (the
    // first round's burst), one RTT to the srflx success, which beats the host check, then one
    // RTT for the nomination.
    assert.equal(await timeToNomination({ rttMs }), 2 * rttMs);
  });
}

test('a slower path takes longer to nominate', async () => {
  assert.ok(await timeToNomination({ rttMs: 200 }) > await timeToNomination({ rttMs: 50 }));
});

test('full cone × symmetric-random nominates within a few round trips at 200 ms RTT', async () => {
  const ms = await timeToNomination({ rttMs: 200, a: 'full-cone', b: 'symmetric-random' });
  assert.ok(ms >= 300 && ms <= 4 * 200 + 250, `${ms} ms`);
});

test('a run is a function of its seed: the same seed, the same ports, pairs and timings', async () => {
  const scenario = { a: { kind: 'eim-random-port', wan: { latencyMs: 50, jitterMs: 30 } }, b: { kind: 'full-cone', lossPercent: 10 }, seed: 'repeat' } as const;
  const strip = (o: Awaited<ReturnType<typeof runUdpPunch>>): unknown => ({ ...o, wallMs: 0 });
  const first = await runUdpPunch(scenario);
  assert.equal(first.connected, true, JSON.stringify(first));
  assert.deepEqual(strip(await runUdpPunch(scenario)), strip(first));
});

test('a 200 ms round trip with 50 ms of jitter each way takes milliseconds of wall time', async () => {
  const outcome = await runUdpPunch({ a: { kind: 'port-restricted', wan: { latencyMs: 50, jitterMs: 50 } }, b: { kind: 'restricted-cone', wan: { latencyMs: 50, jitterMs: 50 } } });
  assert.equal(outcome.connected, true, JSON.stringify(outcome));
  assert.ok(outcome.wallMs < 5_000, `${outcome.wallMs} ms of wall time`);
});
