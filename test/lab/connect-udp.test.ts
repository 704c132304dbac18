import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withLab, type NatKind, type RouterOptions } from '../../src/lab/index.js';
import { skipUnlessLab } from '../support/lab.js';
import { startServe, transfer } from '../support/peers.js';

/**
 * Acceptance (issue 3): peers behind these NAT pairs connect over a direct UDP path and move
 * 1 MiB each way intact.
 */
const easy: NatKind[] = ['full-cone', 'restricted-cone', 'port-restricted', 'eim-random-port', 'symmetric-firewall', 'open'];
const pairs: [NatKind, NatKind][] = [];
for (let i = 0; i < easy.length; i++) for (let j = i; j < easy.length; j++) pairs.push([easy[i]!, easy[j]!]);
pairs.push(['full-cone', 'symmetric-random'], ['restricted-cone', 'symmetric-random']);

for (const [kindA, kindB] of pairs) {
  test(`${kindA} × ${kindB}: direct-udp, 1 MiB each way intact`, { timeout: 180_000 }, async (t) => {
    if (skipUnlessLab(t)) return;
    await withLab({ a: { kind: kindA }, b: { kind: kindB } }, async (lab) => {
      await startServe(lab);
      const { listener, connector } = await transfer(lab, 'b1', 'a1');
      assert.equal(connector.path, 'direct-udp');
      assert.equal(listener.path, 'direct-udp');
    });
  });
}

for (const hairpin of [false, true]) {
  test(`two clients behind the same port-restricted NAT (hairpin ${hairpin ? 'on' : 'off'}) connect directly`, { timeout: 180_000 }, async (t) => {
    if (skipUnlessLab(t)) return;
    const a: RouterOptions = { kind: 'port-restricted', hairpin, clients: 2 };
    await withLab({ a, b: { kind: 'full-cone' } }, async (lab) => {
      await startServe(lab);
      const { connector } = await transfer(lab, 'a2', 'a1');
      assert.equal(connector.path, 'direct-udp');
      // Same LAN: the private endpoints must win (no hairpin needed, shortest path).
      assert.match(String(connector.remote), /^10\./);
    });
  });
}

test('port-restricted behind a port-restricted carrier NAT × port-restricted: direct-udp', { timeout: 180_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'port-restricted', carrier: 'port-restricted' }, b: { kind: 'port-restricted' } }, async (lab) => {
    await startServe(lab);
    const { connector } = await transfer(lab, 'b1', 'a1');
    assert.equal(connector.path, 'direct-udp');
  });
});

test('10% loss on one NAT\'s WAN link: 8 MiB each way intact', { timeout: 300_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'port-restricted', lossPercent: 10 }, b: { kind: 'full-cone' } }, async (lab) => {
    await startServe(lab);
    const { connector } = await transfer(lab, 'b1', 'a1', 8 << 20);
    assert.equal(connector.path, 'direct-udp');
  });
});
