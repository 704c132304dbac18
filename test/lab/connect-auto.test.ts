import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withLab } from '../../src/lab/index.js';
import { skipUnlessLab } from '../support/lab.js';
import { startServe, transfer } from '../support/peers.js';

/**
 * Acceptance (issue 4, path choice): `--transport auto` races UDP checks and TCP. Where a NAT
 * drops all UDP, TCP wins and the peers connect direct-tcp (not relay); where both work, UDP
 * is preferred (src/peer/path-choice.ts).
 */
for (const blockedConnects of [true, false]) {
  test(`udp-blocked × port-restricted, --transport auto, the ${blockedConnects ? 'UDP-blocked' : 'port-restricted'} peer connects: direct-tcp, 1 MiB each way intact`, { timeout: 180_000 }, async (t) => {
    if (skipUnlessLab(t)) return;
    await withLab({ a: { kind: 'udp-blocked' }, b: { kind: 'port-restricted' } }, async (lab) => {
      await startServe(lab);
      const [listenHost, connectHost] = blockedConnects ? ['b1', 'a1'] : ['a1', 'b1'];
      const { listener, connector } = await transfer(lab, listenHost, connectHost, 1 << 20, ['--transport', 'auto']);
      assert.equal(connector.path, 'direct-tcp', JSON.stringify(connector));
      assert.equal(listener.path, 'direct-tcp', JSON.stringify(listener));
      assert.match(String(connector.technique), /^tcp-/);
      assert.match(String(listener.technique), /^tcp-/);
    });
  });
}

test('port-restricted × port-restricted, --transport auto: UDP and TCP both work, UDP is preferred', { timeout: 180_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'port-restricted' }, b: { kind: 'port-restricted' } }, async (lab) => {
    await startServe(lab);
    const { listener, connector } = await transfer(lab, 'b1', 'a1', 256 << 10, ['--transport', 'auto']);
    assert.equal(connector.path, 'direct-udp', JSON.stringify(connector));
    assert.equal(listener.path, 'direct-udp', JSON.stringify(listener));
    assert.equal(connector.technique, 'udp-hole-punch');
  });
});
