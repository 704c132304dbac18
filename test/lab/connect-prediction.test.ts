import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SEQUENTIAL_PORT_BASE, SEQUENTIAL_PORT_COUNT, withLab } from '../../src/lab/index.js';
import { skipUnlessLab } from '../support/lab.js';
import { startServe, transfer } from '../support/peers.js';

/**
 * Acceptance (issue 9, sequential-port prediction over UDP): a peer behind the lab's
 * symmetric-seq NAT (a new port per flow, counting up from 40000, shared by the whole NAT)
 * reaches a port-restricted peer directly. Without prediction the pair cannot connect direct
 * (NATLAB-FACTS "Hole-punching facts": the port-restricted side never learns the port the
 * symmetric side's flow toward it gets). With it, the symmetric side signs the window its next
 * flows will take (src/punch/port-prediction.ts), the other side's checks open its NAT for that
 * window, and the symmetric side's check comes in through it.
 */
for (const seqConnects of [true, false]) {
  test(`symmetric-seq × port-restricted, --transport udp, the ${seqConnects ? 'symmetric-seq' : 'port-restricted'} peer connects: direct-udp by prediction, 1 MiB each way intact`, { timeout: 180_000 }, async (t) => {
    if (skipUnlessLab(t)) return;
    await withLab({ a: { kind: 'symmetric-seq' }, b: { kind: 'port-restricted' } }, async (lab) => {
      await startServe(lab);
      const [listenHost, connectHost] = seqConnects ? ['b1', 'a1'] : ['a1', 'b1'];
      const { listener, connector } = await transfer(lab, listenHost, connectHost, 1 << 20, ['--transport', 'udp']);
      assert.equal(connector.path, 'direct-udp', JSON.stringify(connector));
      assert.equal(listener.path, 'direct-udp', JSON.stringify(listener));
      assert.equal(connector.technique, 'udp-prediction', JSON.stringify(connector));
      assert.equal(listener.technique, 'udp-prediction', JSON.stringify(listener));
      // The port-restricted side reached the other at a port of its NAT's counter (40000–40999).
      const portRestricted = seqConnects ? listener : connector;
      const port = Number(String(portRestricted.remote).split(':')[1]);
      assert.ok(port >= SEQUENTIAL_PORT_BASE && port < SEQUENTIAL_PORT_BASE + SEQUENTIAL_PORT_COUNT, JSON.stringify(portRestricted));
    });
  });
}

test('symmetric-seq × symmetric-seq, --transport udp: direct-udp by prediction on both sides, 1 MiB each way intact', { timeout: 180_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'symmetric-seq' }, b: { kind: 'symmetric-seq' } }, async (lab) => {
    await startServe(lab);
    const { listener, connector } = await transfer(lab, 'b1', 'a1', 1 << 20, ['--transport', 'udp']);
    for (const side of [connector, listener]) {
      assert.equal(side.path, 'direct-udp', JSON.stringify(side));
      assert.equal(side.technique, 'udp-prediction', JSON.stringify(side));
      const port = Number(String(side.remote).split(':')[1]);
      assert.ok(port >= SEQUENTIAL_PORT_BASE && port < SEQUENTIAL_PORT_BASE + SEQUENTIAL_PORT_COUNT, JSON.stringify(side));
    }
  });
});

/**
 * The same over TCP (`--transport tcp`): the connect from the kept connection's local port L is
 * a new flow on a counting NAT too, so the symmetric side signs a predicted TCP window from the
 * same sample, and the other side's simultaneous open connects to every port of it.
 */
for (const other of ['port-restricted', 'symmetric-seq'] as const) {
  test(`symmetric-seq × ${other}, --transport tcp: direct-tcp by prediction, 1 MiB each way intact`, { timeout: 180_000 }, async (t) => {
    if (skipUnlessLab(t)) return;
    await withLab({ a: { kind: 'symmetric-seq' }, b: { kind: other } }, async (lab) => {
      await startServe(lab);
      const { listener, connector } = await transfer(lab, 'b1', 'a1', 1 << 20, ['--transport', 'tcp']);
      for (const side of [connector, listener]) {
        assert.equal(side.path, 'direct-tcp', JSON.stringify(side));
        assert.equal(side.technique, 'tcp-prediction', JSON.stringify(side));
      }
      // b1's side of the connection is a port of a1's NAT counter.
      const port = Number(String(listener.remote).split(':')[1]);
      assert.ok(port >= SEQUENTIAL_PORT_BASE && port < SEQUENTIAL_PORT_BASE + SEQUENTIAL_PORT_COUNT, JSON.stringify(listener));
    });
  });
}
