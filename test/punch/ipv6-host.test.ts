import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_IPV6_HOST_CANDIDATES, ipv6HostAddresses, ipv6HostPrecedence } from '../../src/punch/ipv6-host.js';

test('which IPv6 addresses are gathered as host candidates, and their RFC 6724 precedence', () => {
  const table: [string, number | null][] = [
    ['2001:db8:1::2', 40], // documentation prefix: a global unicast address like any other
    ['2a01:4f8::1', 40],
    ['2002:c000:204::1', 30], // 6to4
    ['2001:0:53aa:64c::1', 5], // Teredo
    ['fd00::2', 3], // unique-local
    ['fe80::1', null], // link-local: needs a zone, identifies the link
    ['fe80::1%eth0', null],
    ['febf::1', null],
    ['fec0::1', null], // site-local, deprecated (RFC 3879)
    ['::1', null],
    ['::', null],
    ['::192.0.2.1', null], // IPv4-compatible, deprecated
    ['::ffff:192.0.2.1', null], // IPv4-mapped
    ['ff02::1', null],
    ['192.0.2.1', null],
  ];
  for (const [address, precedence] of table) assert.equal(ipv6HostPrecedence(address), precedence, address);
});

test('gathered addresses come best first, interface order breaking ties, without repeats, at most the budget', () => {
  assert.deepEqual(ipv6HostAddresses(['fe80::1', 'fd00::2', '2002:c000:204::1', '2001:db8:1::2', '2001:db8:1::2', '2001:db8:9::3']),
    ['2001:db8:1::2', '2001:db8:9::3', '2002:c000:204::1', 'fd00::2']);
  const many = Array.from({ length: 10 }, (_, i) => `2001:db8:${i + 1}::1`);
  assert.deepEqual(ipv6HostAddresses(many), many.slice(0, MAX_IPV6_HOST_CANDIDATES));
  assert.deepEqual(ipv6HostAddresses(['fe80::1', '::1']), []);
});
