import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withLab } from '../../src/lab/index.js';
import { skipUnlessLab } from '../support/lab.js';
import { startServe, transfer } from '../support/peers.js';

/**
 * Acceptance (issue 4, connection reversal): a peer with a public address (`open`) and one
 * behind a port-restricted NAT connect directly with no punching, whichever side connects: the
 * server's dial-back found the open peer reachable, so the NATed peer dials it and the open peer
 * only answers.
 *
 * "No punching" is checked on the open side's router, where conntrack sees who starts each
 * flow: a packet from the open peer that starts a flow (ct direction original) toward anything
 * but the rendezvous server would be a check or SYN sent first. With reversal every packet it
 * sends to the other peer belongs to a flow the other peer started (ct direction reply).
 */
const SERVER = '{ 198.51.100.10, 198.51.100.11 }';

const cases: { transport: string[]; udp: boolean }[] = [
  { transport: [], udp: true },
  { transport: ['--transport', 'udp'], udp: true },
  { transport: ['--transport', 'tcp'], udp: false },
];

for (const { transport, udp } of cases) {
  for (const openConnects of [true, false]) {
    const how = transport.length ? transport.join(' ') : 'default (auto)';
    const direction = openConnects ? 'the open peer connects' : 'the NATed peer connects';
    test(`open × port-restricted, ${how}, ${direction}: direct by ${udp ? 'udp' : 'tcp'}-reversal, and the open peer starts no flow toward the other`, { timeout: 180_000 }, async (t) => {
      if (skipUnlessLab(t)) return;
      await withLab({ a: { kind: 'open' }, b: { kind: 'port-restricted' } }, async (lab) => {
        await lab.routers.a!.addCounter('open-starts', `ip daddr != ${SERVER} meta l4proto { tcp, udp } ct direction original`);
        await startServe(lab);
        const [listenHost, connectHost] = openConnects ? ['b1', 'a1'] : ['a1', 'b1'];
        const { listener, connector } = await transfer(lab, listenHost, connectHost, 256 << 10, transport);
        const technique = udp ? 'udp-reversal' : 'tcp-reversal';
        const path = udp ? 'direct-udp' : 'direct-tcp';
        assert.equal(connector.path, path, JSON.stringify(connector));
        assert.equal(listener.path, path, JSON.stringify(listener));
        assert.equal(connector.technique, technique);
        assert.equal(listener.technique, technique);
        assert.equal((await lab.routers.a!.counter('open-starts')).packets, 0, 'the open peer sent a packet that started a flow (a check or SYN of its own)');
      });
    });
  }
}

test('the "starts a flow" counter is live: a datagram the open peer sends first is counted', { timeout: 120_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'open' }, b: { kind: 'port-restricted' } }, async (lab) => {
    await lab.routers.a!.addCounter('open-starts', `ip daddr != ${SERVER} meta l4proto { tcp, udp } ct direction original`);
    const target = lab.routers.b!.wanAddress;
    const probe = await lab.hosts.a1!.exec([process.execPath, '-e',
      `const s=require('node:dgram').createSocket('udp4');s.send(Buffer.from('x'),4000,'${target}',()=>s.close())`], { timeoutMs: 20_000 });
    assert.equal(probe.code, 0, probe.stderr);
    assert.equal((await lab.routers.a!.counter('open-starts')).packets, 1);
  });
});

test('full-cone × port-restricted, default (auto): the full-cone peer is reachable over UDP only, so udp-reversal, and it starts no UDP flow', { timeout: 180_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'full-cone' }, b: { kind: 'port-restricted' } }, async (lab) => {
    await lab.routers.a!.addCounter('cone-starts', `ip daddr != ${SERVER} meta l4proto udp ct direction original`);
    await startServe(lab);
    const { listener, connector } = await transfer(lab, 'b1', 'a1', 256 << 10);
    assert.equal(connector.technique, 'udp-reversal', JSON.stringify(connector));
    assert.equal(listener.technique, 'udp-reversal', JSON.stringify(listener));
    assert.equal((await lab.routers.a!.counter('cone-starts')).packets, 0);
  });
});
