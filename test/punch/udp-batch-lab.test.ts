import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withLab } from '../../src/lab/index.js';
import { skipUnlessLab } from '../support/lab.js';
import { startServe, transfer } from '../support/peers.js';

/**
 * The stream without the udp-batch addon, end to end: the peers run with NATPUNCH_NO_NATIVE=1
 * (inherited from this process by every natpunch the lab starts), so every datagram goes out
 * through node:dgram's own send, as on a machine where native/udp-batch did not build.
 * test/lab/connect-udp.test.ts runs the same transfers with the addon (where it is built).
 */
process.env['NATPUNCH_NO_NATIVE'] = '1';

test('NATPUNCH_NO_NATIVE=1, port-restricted × full-cone: direct-udp, 1 MiB each way intact', { timeout: 180_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'port-restricted' }, b: { kind: 'full-cone' } }, async (lab) => {
    await startServe(lab);
    const { connector, listener } = await transfer(lab, 'b1', 'a1');
    assert.equal(connector.path, 'direct-udp');
    assert.equal(listener.path, 'direct-udp');
  });
});

test('NATPUNCH_NO_NATIVE=1, 10% loss on one NAT\'s WAN link: 8 MiB each way intact', { timeout: 300_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'port-restricted', lossPercent: 10 }, b: { kind: 'full-cone' } }, async (lab) => {
    await startServe(lab);
    const { connector } = await transfer(lab, 'b1', 'a1', 8 << 20);
    assert.equal(connector.path, 'direct-udp');
  });
});
