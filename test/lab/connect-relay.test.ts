/**
 * Acceptance (issue 8): the relay. Peers that cannot reach each other directly connect through
 * the TURN relay `natpunch serve` runs; a direct path is preferred whenever one proves itself;
 * a direct path that dies fails over to the relay and comes back when the network heals — every
 * byte intact throughout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withLab } from '../../src/lab/index.js';
import { skipUnlessLab } from '../support/lab.js';
import { startServe, transfer } from '../support/peers.js';
import { MAX_GAP_MS, inLab, pacedTransfer, pathEvents } from '../support/paced-transfer.js';

const EIGHT_MIB = 8 << 20;

test('symmetric-random × symmetric-random, --transport auto: no direct path exists, so relay, 8 MiB each way intact', { timeout: 240_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'symmetric-random' }, b: { kind: 'symmetric-random' } }, async (lab) => {
    await startServe(lab);
    const { listener, connector } = await transfer(lab, 'b1', 'a1', EIGHT_MIB);
    assert.equal(connector['path'], 'relay', JSON.stringify(connector));
    assert.equal(listener['path'], 'relay', JSON.stringify(listener));
    assert.equal(connector['technique'], 'turn-udp');
  });
});

test('udp-blocked × udp-blocked, --transport relay: each peer reaches the relay over TCP, 8 MiB each way intact', { timeout: 240_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'udp-blocked' }, b: { kind: 'udp-blocked' } }, async (lab) => {
    await startServe(lab);
    const { listener, connector } = await transfer(lab, 'b1', 'a1', EIGHT_MIB, ['--transport', 'relay']);
    assert.equal(connector['path'], 'relay', JSON.stringify(connector));
    assert.equal(listener['path'], 'relay', JSON.stringify(listener));
    assert.equal(connector['technique'], 'turn-tcp');
    assert.equal(listener['technique'], 'turn-tcp');
  });
});

test('port-restricted × port-restricted, --transport auto: ends on a direct UDP path while a transfer runs, 8 MiB each way intact', { timeout: 240_000 }, async (t) => {
  await inLab(t, { a: { kind: 'port-restricted' }, b: { kind: 'port-restricted' } }, async (lab, dir) => {
    const run = await pacedTransfer(lab, dir, '', 6, EIGHT_MIB);
    await run.finished();
    for (const side of [run.connector, run.listener]) {
      const connected = side.events.find((e) => e['event'] === 'connected')!;
      const last = pathEvents(side).at(-1) ?? connected;
      assert.equal(last['path'], 'direct-udp', `${JSON.stringify(side.events.filter((e) => e['event'] === 'connected' || e['event'] === 'path'))}`);
      // If it started on the relay, it moved to direct as an upgrade.
      if (connected['path'] === 'relay') assert.ok(pathEvents(side).some((e) => e['reason'] === 'upgrade'));
    }
  });
});

test('the direct path cut in the core mid-transfer: failover to the relay, the cut lifted: back to direct; 16 MiB each way intact, no stall over 2 s', { timeout: 240_000 }, async (t) => {
  await inLab(t, { a: { kind: 'port-restricted' }, b: { kind: 'port-restricted' } }, async (lab, dir) => {
    const run = await pacedTransfer(lab, dir, '', 16);
    const connected = run.connector.events.find((e) => e['event'] === 'connected')!;
    assert.equal(connected['path'], 'direct-udp', JSON.stringify(connected));
    // The relay joins as a standby once both allocations and the trickle are done.
    const standby = (e: Record<string, unknown>): boolean => e['event'] === 'standby' && e['path'] === 'relay';
    await Promise.all([run.connector.until(standby, 'a standby relay path', 30_000), run.listener.until(standby, 'a standby relay path', 30_000)]);
    await lab.cut('a', 'b', true);
    // The cut lasts until both sides have moved to the relay.
    const onRelay = (e: Record<string, unknown>): boolean => e['event'] === 'path' && e['path'] === 'relay';
    const [failover] = await Promise.all([run.connector.until(onRelay, 'failover to the relay', 20_000), run.listener.until(onRelay, 'failover to the relay', 20_000)])
      .catch((error: Error) => { throw new Error(`${error.message}\nthe listener's stderr:\n${run.listener.stderr()}`); });
    assert.equal(failover['reason'], 'failover');
    await lab.cut('a', 'b', false);
    const back = await run.connector.until((e) => e['event'] === 'path' && e['path'] === 'direct-udp' && e !== connected, 'back to a direct path', 60_000);
    // 'upgrade' while the relay still answers; 'failover' when the relay path itself looked
    // stalled at that moment (on a 2-core machine the relay is a third busy process); the
    // stall checks below are what the user sees.
    assert.match(String(back['reason']), /^(upgrade|rebinding|failover)$/, JSON.stringify(back));
    const reports = await run.finished();
    assert.ok(reports.listener.maxGapMs <= MAX_GAP_MS, `the listener's longest stall: ${reports.listener.maxGapMs} ms`);
    assert.ok(reports.connector.maxGapMs <= MAX_GAP_MS, `the connector's longest stall: ${reports.connector.maxGapMs} ms`);
  });
});
