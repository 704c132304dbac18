import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withLab } from '../../src/lab/index.js';
import { skipUnlessLab } from '../support/lab.js';
import { SERVE_IPV6, SERVER_URL, SERVER_URL6, startServe, transfer } from '../support/peers.js';

/**
 * Acceptance (issue 9, IPv6): peers reach one another over IPv6 through stateful IPv6 firewalls
 * (RFC 6092: no NAT, unsolicited inbound dropped) by simultaneous outbound checks, and a
 * dual-stack pair whose IPv4 is broken connects over IPv6. Through the real CLI, in a
 * dual-stack lab (2001:db8::/32), with `natpunch serve` on both of the server's families.
 */

const IPV6_REMOTE = /^\[2001:db8:[12]::2\]:\d+$/;

test('two peers behind stateful IPv6 firewalls, IPv4 broken on both sides: direct-udp over IPv6, 1 MiB each way intact', { timeout: 180_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'port-restricted' }, b: { kind: 'port-restricted' }, ipv6: true }, async (lab) => {
    await Promise.all([lab.routers.a!.blockIpv4(true), lab.routers.b!.blockIpv4(true)]);
    await startServe(lab, ...SERVE_IPV6);
    const before = await Promise.all([lab.routers.a!.counter('unsolicited6'), lab.routers.b!.counter('unsolicited6')]);
    const { listener, connector } = await transfer(lab, 'b1', 'a1', 1 << 20, [], { listen: SERVER_URL6, connect: SERVER_URL6 });
    for (const [side, event] of [['connector', connector], ['listener', listener]] as const) {
      assert.equal(event.path, 'direct-udp', `${side}: ${JSON.stringify(event)}`);
      assert.match(String(event.remote), IPV6_REMOTE, `${side}: the path is IPv6 between the LAN hosts' global addresses`);
      assert.equal(event.technique, 'udp-hole-punch', `${side}: through the firewalls by simultaneous outbound checks`);
    }
    assert.equal(connector.remote, `[${lab.hosts.b1!.addresses6[0]}]:${String(connector.remote).split(']:')[1]}`);
    // The firewalls were really in the way: each dropped something unsolicited (the server's
    // dial-back at registration, or the first checks before the other side's opened the hole).
    const after = await Promise.all([lab.routers.a!.counter('unsolicited6'), lab.routers.b!.counter('unsolicited6')]);
    assert.ok(after.some((c, i) => c.packets > before[i]!.packets), 'neither firewall dropped anything: was IPv6 filtered at all?');
  });
});

test('a dual-stack pair with IPv4 broken at one router connects over IPv6', { timeout: 180_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'port-restricted' }, b: { kind: 'full-cone' }, ipv6: true }, async (lab) => {
    await lab.routers.a!.blockIpv4(true);
    await startServe(lab, ...SERVE_IPV6);
    // b1 has working IPv4 (and registers over it, with an IPv4 server-reflexive candidate a1
    // could otherwise punch to); a1 reaches the server over IPv6 only.
    const { listener, connector } = await transfer(lab, 'b1', 'a1', 1 << 20, [], { listen: SERVER_URL, connect: SERVER_URL6 });
    assert.equal(connector.path, 'direct-udp');
    assert.equal(listener.path, 'direct-udp');
    assert.match(String(connector.remote), IPV6_REMOTE);
    assert.match(String(listener.remote), IPV6_REMOTE);
    // b1 is reachable over IPv4 (full cone), so the plan is reversal; over IPv6, behind b's
    // firewall, both sides had to send: a punch, and reported as one.
    assert.equal(connector.technique, 'udp-hole-punch');
    assert.equal(listener.technique, 'udp-hole-punch');
  });
});

test('a dual-stack pair with both families working prefers IPv6', { timeout: 180_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'port-restricted' }, b: { kind: 'port-restricted' }, ipv6: true }, async (lab) => {
    await startServe(lab, ...SERVE_IPV6);
    const { connector } = await transfer(lab, 'b1', 'a1', 256 << 10, [], { listen: SERVER_URL, connect: SERVER_URL });
    assert.equal(connector.path, 'direct-udp');
    assert.match(String(connector.remote), IPV6_REMOTE, `the IPv6 host pair outranks the IPv4 server-reflexive one (RFC 8305, RFC 8421): ${JSON.stringify(connector)}`);
  });
});

test('with IPv4 broken on both sides, --transport relay reaches the built-in relay over IPv6', { timeout: 180_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'port-restricted' }, b: { kind: 'port-restricted' }, ipv6: true }, async (lab) => {
    await Promise.all([lab.routers.a!.blockIpv4(true), lab.routers.b!.blockIpv4(true)]);
    await startServe(lab, ...SERVE_IPV6);
    const { listener, connector } = await transfer(lab, 'b1', 'a1', 256 << 10, ['--transport', 'relay'], { listen: SERVER_URL6, connect: SERVER_URL6 });
    assert.equal(connector.path, 'relay');
    assert.equal(listener.path, 'relay');
  });
});
