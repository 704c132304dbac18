import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withLab, type NatKind } from '../../src/lab/index.js';
import { skipUnlessLab } from '../support/lab.js';
import { startServe, transfer } from '../support/peers.js';

/**
 * Acceptance (issue 4, first slice): with `--transport tcp`, peers behind these NAT pairs punch
 * a direct TCP connection by simultaneous open and move 1 MiB each way intact.
 */
const pairs: [NatKind, NatKind][] = [['port-restricted', 'port-restricted'], ['full-cone', 'port-restricted'], ['eim-random-port', 'port-restricted']];

for (const [kindA, kindB] of pairs) {
  test(`--transport tcp, ${kindA} × ${kindB}: direct-tcp by simultaneous open, 1 MiB each way intact`, { timeout: 180_000 }, async (t) => {
    if (skipUnlessLab(t)) return;
    await withLab({ a: { kind: kindA }, b: { kind: kindB } }, async (lab) => {
      await startServe(lab);
      const { listener, connector } = await transfer(lab, 'b1', 'a1', 1 << 20, ['--transport', 'tcp']);
      assert.equal(connector.path, 'direct-tcp');
      assert.equal(listener.path, 'direct-tcp');
      assert.equal(connector.technique, 'tcp-simultaneous-open');
    });
  });
}
