import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { destroyStaleLabs, labSupport, natTruth, withLab } from '../../src/lab/index.js';
import { JsonLines, observeBehaviour, runProbe, startReflector } from '../../src/lab/observe.js';
import { probeArgv, type PeerEvent, type PingResult } from '../../src/lab/probe.js';
import { planLab, SERVER_ADDRESSES, SERVER_ADDRESSES6 } from '../../src/lab/topology.js';
import { NatpunchError } from '../../src/errors.js';
import { skipUnlessLab } from '../support/lab.js';

/**
 * The dual-stack lab: IPv6 from 2001:db8::/32 beside IPv4, routed without NAT, behind the
 * stateful firewall RFC 6092 recommends for IPv6 routers; and the switch that breaks a router's
 * IPv4 while its IPv6 goes on.
 */

const TIMEOUT = { timeout: 120_000 };
const v6 = (address: string, port: number): string => `[${address}]:${port}`;

before(async () => {
  if (labSupport().ok) await destroyStaleLabs();
});

test('the plan numbers every link from 2001:db8::/32 only when asked, and refuses a carrier', () => {
  const plain = planLab('t1', { kind: 'port-restricted' }, { kind: 'open' });
  assert.equal(plain.ipv6, false);
  assert.deepEqual(plain.hosts.map((h) => h.addresses6), [[], []]);
  assert.deepEqual(plain.routers.map((r) => r.ipv6), [null, null]);

  const dual = planLab('t1', { kind: 'port-restricted', clients: 2 }, { kind: 'symmetric-random', ipv6: 'open' }, { ipv6: true });
  assert.deepEqual(dual.server.addresses6, [...SERVER_ADDRESSES6]);
  assert.deepEqual(dual.hosts.map((h) => [h.name, h.addresses6[0], h.gateway6]), [
    ['a1', '2001:db8:1::2', '2001:db8:1::1'], ['a2', '2001:db8:1::3', '2001:db8:1::1'], ['b1', '2001:db8:2::2', '2001:db8:2::1'],
  ]);
  assert.deepEqual(dual.routers.map((r) => [r.name, r.ipv6?.wanAddress, r.ipv6?.lanNetwork, r.options.ipv6]), [
    ['a', '2001:db8:113::10', '2001:db8:1::/64', 'firewall'], ['b', '2001:db8:113::20', '2001:db8:2::/64', 'open'],
  ]);
  // The LANs are routed, not translated: the core knows each /64 behind its router.
  assert.deepEqual(dual.inet.routes6, [{ network: '2001:db8:1::/64', via: '2001:db8:113::10' }, { network: '2001:db8:2::/64', via: '2001:db8:113::20' }]);
  // IPv4 stays exactly as without IPv6.
  assert.deepEqual(dual.hosts.map((h) => h.addresses), [['10.0.1.2'], ['10.0.1.3'], ['10.0.2.2']]);

  assert.throws(() => planLab('t1', { kind: 'port-restricted', carrier: 'full-cone' }, undefined, { ipv6: true }),
    (error: unknown) => NatpunchError.is(error) && error.code === 'ERR_LAB' && /carrier/.test(error.message));
  assert.throws(() => planLab('t1', { kind: 'open', ipv6: 'nat66' as 'open' }, undefined, { ipv6: true }),
    (error: unknown) => NatpunchError.is(error) && error.code === 'ERR_LAB' && /a\.ipv6 is "nat66"/.test(error.message));
});

test('IPv6 behind a firewall router: routed, outbound opens, unsolicited inbound is dropped', TIMEOUT, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'port-restricted' }, b: { kind: 'symmetric-random', ipv6: 'open' }, ipv6: true }, async (lab) => {
    const a1 = lab.hosts.a1!;
    const b1 = lab.hosts.b1!;
    const a = lab.routers.a!;
    const reflector = await startReflector(lab.server, [4478, 4479], [SERVER_ADDRESSES6[0], SERVER_ADDRESSES6[1]]);
    t.after(() => reflector.stop());

    await t.test('a LAN host reaches the server over IPv6, which sees its own global address (no NAT)', async () => {
      const mapped = await runProbe<{ seen: (string | null)[] }>(a1, { mode: 'mapping', targets: [reflector.endpoints[0]] });
      assert.match(mapped.seen[0] ?? 'no answer', /^\[2001:db8:1::2\]:\d+$/);
    });

    await t.test('the firewall is a symmetric UDP firewall in RFC 3489 words: no translation, address-and-port-dependent filtering', async () => {
      const { mappedAddress, ...observed } = await observeBehaviour(a1, reflector);
      assert.deepEqual(observed, natTruth('symmetric-firewall'), `seen from a1 (mapped ${mappedAddress})`);
      // The open router lets everything in: endpoint-independent filtering, nothing translated.
      const { mappedAddress: openMapped, ...open } = await observeBehaviour(b1, reflector);
      assert.deepEqual(open, natTruth('open'), `seen from b1 (mapped ${openMapped})`);
    });

    await t.test('an unsolicited datagram to a LAN host is dropped and counted; after the host sent out, the answer passes', async () => {
      const listener = a1.spawn(probeArgv({ mode: 'peer', reflector: reflector.endpoints[0] }));
      t.after(() => { listener.kill('SIGKILL'); });
      const lines = new JsonLines(listener, 'peer probe in a1');
      const { local } = await lines.next<PeerEvent>();
      const target = v6(a1.addresses6[0]!, local!);
      const before = await a.counter('unsolicited6');
      // b1 has sent nothing to a1 yet: its datagrams die at router a's firewall.
      const unsolicited = await runProbe<PingResult>(b1, { mode: 'ping', target, waitMs: 1000 });
      assert.equal(unsolicited.replied, false, 'an unsolicited inbound datagram passed the IPv6 firewall');
      assert.ok((await a.counter('unsolicited6')).packets > before.packets, 'the drop is counted as unsolicited6');
      // Now a1 sends toward b1's socket first (outbound opens state); b1's next datagram from
      // that same socket is the answer to it.
      const b1Listener = b1.spawn(probeArgv({ mode: 'peer', reflector: reflector.endpoints[0] }));
      t.after(() => { b1Listener.kill('SIGKILL'); });
      const b1Lines = new JsonLines(b1Listener, 'peer probe in b1');
      const b1Local = (await b1Lines.next<PeerEvent>()).local!;
      const fromA1 = await runProbe<PingResult>(a1, { mode: 'ping', target: v6(b1.addresses6[0]!, b1Local), waitMs: 2000 });
      assert.equal(fromA1.replied, true, 'a1 → b1 and the echo back through a1\'s firewall');
      assert.equal(fromA1.from, v6(b1.addresses6[0]!, b1Local));
    });

    await t.test('IPv4 works beside it, untranslated IPv6 never changes it', async () => {
      const reflector4 = await startReflector(lab.server, [4480, 4481]);
      t.after(() => reflector4.stop());
      const mapped = await runProbe<{ seen: (string | null)[] }>(a1, { mode: 'mapping', targets: [reflector4.endpoints[0]] });
      assert.match(mapped.seen[0] ?? 'no answer', new RegExp(`^${a.wanAddress.replace(/\./g, '\\.')}:`));
      assert.equal(SERVER_ADDRESSES[0], reflector4.endpoints[0].split(':')[0]);
    });

    await t.test('blockIpv4 drops every forwarded IPv4 packet and leaves IPv6 alone; unblocking restores it', async () => {
      const reflector4 = await startReflector(lab.server, [4482, 4483]);
      t.after(() => reflector4.stop());
      await a.blockIpv4(true);
      const [over4, over6] = await Promise.all([
        runProbe<{ seen: (string | null)[] }>(a1, { mode: 'mapping', targets: [reflector4.endpoints[0]] }),
        runProbe<{ seen: (string | null)[] }>(a1, { mode: 'mapping', targets: [reflector.endpoints[1]] }),
      ]);
      assert.deepEqual(over4.seen, [null], 'IPv4 passed a router whose IPv4 is blocked');
      assert.match(over6.seen[0] ?? 'no answer', /^\[2001:db8:1::2\]:/);
      await a.blockIpv4(false);
      const again = await runProbe<{ seen: (string | null)[] }>(a1, { mode: 'mapping', targets: [reflector4.endpoints[0]] });
      assert.notEqual(again.seen[0], null, 'IPv4 did not come back after blockIpv4(false)');
    });
  });
});

test('without ipv6, a lab has no IPv6 at all: disabled in every namespace', TIMEOUT, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'port-restricted' } }, async (lab) => {
    const result = await lab.hosts.a1!.exec(['sysctl', '-n', 'net.ipv6.conf.all.disable_ipv6']);
    assert.equal(result.stdout.trim(), '1');
    assert.deepEqual(lab.hosts.a1!.addresses6, []);
    assert.equal(lab.routers.a!.ipv6, null);
  });
});
