/**
 * The TURN server's peer-address policy: every special-purpose range refused by default at its
 * first, a middle and its last address, in every IPv6 form that embeds an IPv4 address; public
 * addresses let through; --relay-allow / --relay-deny; the server's own addresses; bad input.
 * Addresses here are built by this file's own helpers, not the module's, so a shared mistake in
 * byte order or masking cannot make both sides agree.
 */

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_DENIED_RANGES, PeerAddressPolicy, type PeerAddressPolicyOptions } from '../../src/turn/peer-policy.js';
import { parseCidr } from '../../src/turn/cidr.js';
import { assertUsageError } from '../wire/helpers.js';

// ---- the test's own address arithmetic ----

/** "a.b.c.d" of a 32-bit number. */
function v4(n: number): string {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
}

/** Two 16-bit hex words of a 32-bit number, e.g. "7f00:1". */
function v4Words(n: number): string {
  return `${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
}

/** An uncompressed, zero-padded IPv6 text of a 128-bit number: "fe80:0000:...:0001". */
function v6(n: bigint): string {
  const digits = n.toString(16).padStart(32, '0');
  return digits.match(/.{4}/g)!.join(':');
}

/** The IPv4 number of a dotted quad (for the table below, written by hand). */
function num(dotted: string): number {
  return dotted.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

/** The IPv6 forms that carry IPv4 address `n`, with what the reason says about each. */
function embeddings(n: number): Array<{ form: string; text: string; says: RegExp }> {
  const publicV4 = num('8.8.4.4');
  const forms = [
    { form: 'IPv4-mapped', text: `::ffff:${v4(n)}`, says: /is IPv4-mapped/ },
    { form: 'IPv4-mapped, hex', text: `::FFFF:${v4Words(n)}`, says: /is IPv4-mapped/ },
    { form: 'IPv4-translated', text: `::ffff:0:${v4(n)}`, says: /IPv4-translated/ },
    { form: '6to4', text: `2002:${v4Words(n)}::1`, says: /6to4/ },
    { form: 'NAT64', text: `64:ff9b::${v4(n)}`, says: /NAT64 well-known prefix/ },
    // Teredo: server at bits 32-63; client at the last 32 bits XOR 0xffffffff (RFC 4380 §4).
    // The other half holds a public address so only the one under test can be refused.
    { form: 'Teredo server', text: `2001:0:${v4Words(n)}:0:0:${v4Words(~publicV4 >>> 0)}`, says: /Teredo server/ },
    { form: 'Teredo client', text: `2001:0:${v4Words(publicV4)}:8000:1234:${v4Words(~n >>> 0)}`, says: /Teredo client/ },
  ];
  // ::0.0.0.0 and ::0.0.0.1 are IPv6's own :: and ::1, judged as such (below), not as compatible.
  if (n > 1) {
    forms.push({ form: 'IPv4-compatible', text: `::${v4(n)}`, says: /IPv4-compatible/ });
    forms.push({ form: 'IPv4-compatible, hex', text: `::${v4Words(n)}`, says: /IPv4-compatible/ });
  }
  return forms;
}

// ---- the ranges refused by default, written out independently of the module ----

const IPV4_DENIED: Array<[range: string, name: string]> = [
  ['0.0.0.0/8', 'unspecified, "this network"'],
  ['127.0.0.0/8', 'loopback'],
  ['10.0.0.0/8', 'private'],
  ['172.16.0.0/12', 'private'],
  ['192.168.0.0/16', 'private'],
  ['100.64.0.0/10', 'CGNAT shared address space'],
  ['169.254.0.0/16', 'link-local'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
  ['255.255.255.255/32', 'limited broadcast'],
  ['192.0.0.0/24', 'IETF protocol assignments'],
  ['198.18.0.0/15', 'benchmarking'],
];

const IPV6_DENIED: Array<[range: string, name: string]> = [
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['fc00::/7', 'unique local (ULA)'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local (deprecated)'],
  ['ff00::/8', 'multicast'],
  ['64:ff9b:1::/48', 'local-use NAT64'],
  ['100::/64', 'discard-only'],
];

function ipv4Range(range: string): { first: number; last: number; length: number } {
  const [base = '', length = ''] = range.split('/');
  const first = num(base);
  const size = 2 ** (32 - Number(length));
  return { first, last: first + size - 1, length: Number(length) };
}

/** The most specific row of IPV4_DENIED holding `n` (255.255.255.255 is broadcast, not reserved). */
function ipv4Expected(n: number): [string, string] {
  const rows = IPV4_DENIED.map((row) => ({ row, r: ipv4Range(row[0]) })).filter(({ r }) => n >= r.first && n <= r.last);
  rows.sort((a, b) => b.r.length - a.r.length);
  return rows[0]!.row;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function assertRefused(policy: PeerAddressPolicy, ip: string, reason: RegExp): void {
  const verdict = policy.check(ip);
  assert.equal(verdict.ok, false, `${ip} should be refused`);
  if (!verdict.ok) assert.match(verdict.reason, reason);
}

function assertAllowed(policy: PeerAddressPolicy, ip: string): void {
  assert.deepEqual(policy.check(ip), { ok: true }, `${ip} should be allowed`);
}

const byDefault = new PeerAddressPolicy();

describe('PeerAddressPolicy: IPv4 ranges refused by default', () => {
  for (const [range] of IPV4_DENIED) {
    const { first, last } = ipv4Range(range);
    const samples = [...new Set([first, first + Math.floor((last - first + 1) / 2), last])];
    for (const n of samples) {
      const [expectedRange, name] = ipv4Expected(n);
      const names = new RegExp(`which is ${escape(name)} \\(${escape(expectedRange)}\\); --relay-allow ${escape(expectedRange)} opens it$`);
      it(`refuses ${v4(n)} (${range}) as ${name}`, () => {
        assertRefused(byDefault, v4(n), new RegExp(`^${escape(v4(n))} is ${escape(name)} \\(${escape(expectedRange)}\\); --relay-allow ${escape(expectedRange)} opens it$`));
      });
      it(`refuses ${v4(n)} (${range}) in every IPv6 form that carries it`, () => {
        for (const { form, text, says } of embeddings(n)) {
          const verdict = byDefault.check(text);
          assert.equal(verdict.ok, false, `${form} ${text} should be refused`);
          if (!verdict.ok) {
            assert.match(verdict.reason, says, `${form} ${text}`);
            assert.match(verdict.reason, names, `${form} ${text}`);
            assert.ok(verdict.reason.startsWith(`${text} `), `the reason starts with the address as given: ${verdict.reason}`);
          }
        }
      });
    }
  }
});

describe('PeerAddressPolicy: IPv6 ranges refused by default', () => {
  for (const [range, name] of IPV6_DENIED) {
    const [base = '', lengthText = ''] = range.split('/');
    // The first address from the text, via the module's own parser only for the start point.
    const first = BigInt(`0x${Buffer.from(parseCidr(base).bytes).toString('hex')}`);
    const size = 1n << BigInt(128 - Number(lengthText));
    const samples = [...new Set([first, first + size / 2n, first + size - 1n])];
    for (const n of samples) {
      const text = v6(n);
      it(`refuses ${text} (${range}) as ${name}, also in upper case`, () => {
        const reason = new RegExp(`is ${escape(name)} \\(${escape(range)}\\); --relay-allow ${escape(range)} opens it$`);
        assertRefused(byDefault, text, reason);
        assertRefused(byDefault, text.toUpperCase(), reason);
      });
    }
  }

  it('judges a link-local address with a zone id as link-local', () => {
    assertRefused(byDefault, 'fe80::1%eth0', /^fe80::1%eth0 is link-local \(fe80::\/10\)/);
    assertRefused(byDefault, 'FE80::ABCD%2', /is link-local/);
  });

  it('refuses :: and ::1 in their compressed spellings (CVE-2020-26262)', () => {
    assertRefused(byDefault, '::', /^:: is unspecified \(::\/128\)/);
    assertRefused(byDefault, '::1', /^::1 is loopback \(::1\/128\)/);
    assertRefused(byDefault, '0:0:0:0:0:0:0:1', /is loopback \(::1\/128\)/);
  });
});

describe('DEFAULT_DENIED_RANGES', () => {
  it('lists exactly the ranges of this test, with the same names', () => {
    const listed = new Map(DEFAULT_DENIED_RANGES.map((r) => [r.range, r.name]));
    assert.deepEqual(listed, new Map([...IPV4_DENIED, ...IPV6_DENIED]));
  });

  it('cites an RFC for every range', () => {
    for (const r of DEFAULT_DENIED_RANGES) assert.match(r.see, /^RFC \d+/, r.range);
  });
});

describe('PeerAddressPolicy: public addresses', () => {
  // 192.0.2.0/24, 198.51.100.0/24 and 203.0.113.0/24 are RFC 5737's TEST-NETs and 2001:db8::/32
  // RFC 3849's documentation prefix. They are NOT refused by default: nothing routes them, so
  // refusing protects nothing, and the project's lab uses 203.0.113.0/24 as its public internet.
  const publicAddresses = [
    '8.8.8.8', '1.1.1.1', '192.0.2.1', '198.51.100.7', '203.0.113.5', '203.0.113.255',
    '2001:db8::1', '2606:4700:4700::1111', '2001:4860:4860::8888',
    '::ffff:8.8.8.8', '::8.8.8.8', '::ffff:0:8.8.8.8', '2002:808:808::1', '64:ff9b::8.8.8.8',
    `2001:0:808:808:0:0:${v4Words(~num('8.8.4.4') >>> 0)}`,
    // One past either end of the nearby refused ranges.
    '9.255.255.255', '11.0.0.0', '126.255.255.255', '128.0.0.0', '172.15.255.255', '172.32.0.0',
    '192.167.255.255', '192.169.0.0', '100.63.255.255', '100.128.0.0', '169.253.255.255', '169.255.0.0',
    '223.255.255.255', '192.0.1.255', '192.0.1.0', '198.17.255.255', '198.20.0.0', '1.0.0.0',
    'fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '::2:0:0', '100:0:0:1::', '64:ff9b:2::1',
  ];
  for (const ip of publicAddresses) {
    it(`allows ${ip}`, () => assertAllowed(byDefault, ip));
  }
});

describe('PeerAddressPolicy: spellings that are not addresses', () => {
  const notAddresses = [
    '127.1', '0x7f.0.0.1', '0x7f000001', '0177.0.0.1', '127.000.0.1', '127.0.0.01', '2130706433', '127.0.0.1.',
    '', ' 127.0.0.1', '127.0.0.1 ', 'localhost', '1.2.3.4%eth0', '::ffff:0177.0.0.1', '[::1]', '::1/128',
    '1:2:3:4:5:6:7:8:9', '1::2::3', 'fe80::1%', '256.0.0.1',
  ];
  for (const ip of notAddresses) {
    it(`refuses ${JSON.stringify(ip)}: not an IP address`, () => {
      assert.deepEqual(byDefault.check(ip), { ok: false, reason: `${JSON.stringify(ip)} is not an IP address` });
    });
  }

  it('refuses a value that is not a string instead of throwing', () => {
    assert.equal(byDefault.check(undefined as unknown as string).ok, false);
    assert.equal(byDefault.check(0x7f000001 as unknown as string).ok, false);
  });
});

describe('PeerAddressPolicy.checkBytes', () => {
  it('judges the 4 or 16 bytes of a decoded XOR-PEER-ADDRESS', () => {
    assert.deepEqual(byDefault.checkBytes(Uint8Array.of(8, 8, 8, 8)), { ok: true });
    const loop4 = byDefault.checkBytes(Uint8Array.of(127, 0, 0, 1));
    assert.deepEqual(loop4, { ok: false, reason: '127.0.0.1 is loopback (127.0.0.0/8); --relay-allow 127.0.0.0/8 opens it' });
    const mapped = new Uint8Array(16);
    mapped.set([0xff, 0xff, 127, 0, 0, 1], 10);
    assert.deepEqual(byDefault.checkBytes(mapped), loop4, 'the mapped bytes are the same destination');
  });

  it('refuses a length that is no address', () => {
    assert.deepEqual(byDefault.checkBytes(new Uint8Array(5)), { ok: false, reason: 'an IP address has 4 or 16 bytes, got 5' });
  });
});

describe('PeerAddressPolicy: --relay-allow', () => {
  it('opens loopback and every spelling of it when 127.0.0.0/8 is allowed', () => {
    const policy = new PeerAddressPolicy({ allow: ['127.0.0.0/8'] });
    assertAllowed(policy, '127.0.0.1');
    assertAllowed(policy, '127.255.255.255');
    for (const { form, text } of embeddings(num('127.0.0.1'))) {
      assert.deepEqual(policy.check(text), { ok: true }, `${form} ${text}`);
    }
    assertRefused(policy, '10.0.0.1', /is private \(10\.0\.0\.0\/8\)/);
    assertRefused(policy, '::1', /is loopback \(::1\/128\)/);
  });

  it('takes an IPv4 range written in IPv4-mapped IPv6 as the same range', () => {
    const policy = new PeerAddressPolicy({ allow: ['::ffff:127.0.0.0/104'] });
    assertAllowed(policy, '127.0.0.1');
    assertAllowed(policy, '2002:7f00:1::1');
    assertRefused(policy, '10.0.0.1', /private/);
  });

  it('opens only the range allowed, not the rest of the default one around it', () => {
    const policy = new PeerAddressPolicy({ allow: ['10.1.0.0/16', '192.168.1.7'] });
    assertAllowed(policy, '10.1.0.0');
    assertAllowed(policy, '10.1.255.255');
    assertAllowed(policy, '::ffff:10.1.2.3');
    assertAllowed(policy, '192.168.1.7');
    assertRefused(policy, '10.2.0.0', /^10\.2\.0\.0 is private \(10\.0\.0\.0\/8\)/);
    assertRefused(policy, '10.0.255.255', /is private/);
    assertRefused(policy, '192.168.1.8', /is private \(192\.168\.0\.0\/16\)/);
  });

  it('opens an IPv6 range, zone ids included', () => {
    const policy = new PeerAddressPolicy({ allow: ['fe80::/10'] });
    assertAllowed(policy, 'fe80::1%eth0');
    assertAllowed(policy, 'FEBF::1');
    assertRefused(policy, 'fec0::1', /site-local/);
  });

  it('keeps IPv4 and IPv6 apart: ::/0 is all of IPv6 and none of IPv4', () => {
    const policy = new PeerAddressPolicy({ allow: ['::/0'] });
    assertAllowed(policy, '::1');
    assertAllowed(policy, 'fc00::1');
    assertRefused(policy, '127.0.0.1', /loopback/);
    assertRefused(policy, '::ffff:127.0.0.1', /loopback \(127\.0\.0\.0\/8\)/);
  });

  it('does not open an embedded IPv4 address by allowing the IPv6 prefix around it', () => {
    const policy = new PeerAddressPolicy({ allow: ['2002::/16', '64:ff9b::/96', '2001::/32'] });
    assertAllowed(policy, '2002:808:808::1');
    assertRefused(policy, '2002:7f00:1::1', /6to4 router \(RFC 3056 §2\), which is loopback/);
    assertRefused(policy, '64:ff9b::10.0.0.1', /NAT64 .* which is private/);
    assertRefused(policy, '2001:0:a00:1::', /Teredo server .* which is private/);
  });

  it('opens everything IPv4 with 0.0.0.0/0, as asked', () => {
    const policy = new PeerAddressPolicy({ allow: ['0.0.0.0/0'] });
    assertAllowed(policy, '127.0.0.1');
    assertAllowed(policy, '0.0.0.0');
    assertAllowed(policy, '2002:a00:1::');
    assertRefused(policy, 'fe80::1', /link-local/);
  });
});

describe('PeerAddressPolicy: --relay-deny', () => {
  it('closes a range the defaults leave open', () => {
    const policy = new PeerAddressPolicy({ deny: ['203.0.113.0/24'] });
    assertRefused(policy, '203.0.113.9', /^203\.0\.113\.9 is in --relay-deny 203\.0\.113\.0\/24$/);
    assertRefused(policy, '64:ff9b::203.0.113.9', /embeds 203\.0\.113\.9 .* which is in --relay-deny 203\.0\.113\.0\/24$/);
    assertAllowed(policy, '198.51.100.1');
  });

  it('lets the most specific rule decide, either way round', () => {
    const holes = new PeerAddressPolicy({ allow: ['10.0.0.0/8'], deny: ['10.1.0.0/16'] });
    assertAllowed(holes, '10.2.0.1');
    assertRefused(holes, '10.1.0.1', /in --relay-deny 10\.1\.0\.0\/16/);
    const only = new PeerAddressPolicy({ deny: ['0.0.0.0/0', '::/0'], allow: ['203.0.113.0/24'] });
    assertAllowed(only, '203.0.113.5');
    assertRefused(only, '8.8.8.8', /in --relay-deny 0\.0\.0\.0\/0/);
    assertRefused(only, '2001:db8::1', /in --relay-deny ::\/0/);
  });

  it('lets a deny win over an allow of the same range', () => {
    const policy = new PeerAddressPolicy({ allow: ['198.51.100.0/24'], deny: ['198.51.100.0/24'] });
    assertRefused(policy, '198.51.100.1', /in --relay-deny 198\.51\.100\.0\/24/);
  });

  it('keeps IPv4 and IPv6 apart: denying ::/0 leaves IPv4 alone', () => {
    const policy = new PeerAddressPolicy({ deny: ['::/0'] });
    assertAllowed(policy, '8.8.8.8');
    assertAllowed(policy, '::ffff:8.8.8.8');
    assertRefused(policy, '2002:808:808::1', /^2002:808:808::1 is in --relay-deny ::\/0$/);
  });
});

describe('PeerAddressPolicy: the server\'s own addresses', () => {
  const options: PeerAddressPolicyOptions = {
    allow: ['203.0.113.0/24', '127.0.0.0/8', '2001:db8::/32'],
    serverAddresses: ['203.0.113.1', '127.0.0.1', '2001:DB8::5'],
  };
  const policy = new PeerAddressPolicy(options);

  it('refuses them even inside an allowed range', () => {
    assertRefused(policy, '203.0.113.1', /^203\.0\.113\.1 is this server's own address; a relay never sends to itself, whatever --relay-allow says$/);
    assertRefused(policy, '127.0.0.1', /this server's own address/);
    assertRefused(policy, '2001:db8::5', /this server's own address/);
    assertAllowed(policy, '203.0.113.2');
    assertAllowed(policy, '127.0.0.2');
    assertAllowed(policy, '2001:db8::6');
  });

  it('refuses them in every spelling and embedding', () => {
    for (const { form, text } of embeddings(num('203.0.113.1'))) {
      assertRefused(policy, text, /this server's own address/);
      assert.ok(!policy.check(text).ok, form);
    }
    assertRefused(policy, '2001:0db8:0000:0000:0000:0000:0000:0005', /this server's own address/);
  });

  it('refuses a server address that is not an IP address', () => {
    assertUsageError(() => new PeerAddressPolicy({ serverAddresses: ['localhost'] }), /^server address "localhost" is not an IP address$/);
    assertUsageError(() => new PeerAddressPolicy({ serverAddresses: ['10.0.0.0/8'] }), /is not an IP address/);
  });
});

describe('parseCidr and the policy options', () => {
  const bad: Array<[string, RegExp]> = [
    ['10.0.0.0/33', /^--relay-allow 10\.0\.0\.0\/33: prefix length 33 is over 32 for IPv4$/],
    ['::/129', /^--relay-allow ::\/129: prefix length 129 is over 128 for IPv6$/],
    ['10.0.0.1/8', /^--relay-allow 10\.0\.0\.1\/8: address bits are set past the \/8 prefix; the range is 10\.0\.0\.0\/8 \(or write 10\.0\.0\.1\/32 for the one address\)$/],
    ['fe80::1/10', /the range is fe80::\/10 \(or write fe80::1\/128/],
    ['10.0.0.0/', /prefix length "" is not a decimal number/],
    ['10.0.0.0/08', /prefix length "08" is not a decimal number without leading zeros/],
    ['10.0.0.0/-1', /prefix length "-1" is not a decimal number/],
    ['10.0.0.0/8/8', /more than one "\/"/],
    ['127.1/8', /^--relay-allow 127\.1\/8: "127\.1" is not an IP address \(IPv4 is four decimal numbers 0-255 without leading zeros\)$/],
    ['0177.0.0.0/8', /"0177\.0\.0\.0" is not an IP address/],
    ['0x7f.0.0.0/8', /"0x7f\.0\.0\.0" is not an IP address/],
    ['intranet/8', /"intranet" is not an IP address/],
    ['fe80::%eth0/10', /a range cannot carry an IPv6 zone id \("%eth0"\); drop it/],
    ['', /^--relay-allow: expected a range such as 10\.0\.0\.0\/8 or fc00::\/7, got an empty string$/],
  ];
  for (const [text, message] of bad) {
    it(`refuses --relay-allow ${JSON.stringify(text)}`, () => {
      assertUsageError(() => new PeerAddressPolicy({ allow: [text] }), message);
    });
  }

  it('names --relay-deny when the deny list is wrong', () => {
    assertUsageError(() => new PeerAddressPolicy({ deny: ['10.0.0.0/40'] }), /^--relay-deny 10\.0\.0\.0\/40: prefix length 40 is over 32 for IPv4$/);
  });

  it('reads ranges into canonical form and family', () => {
    const table: Array<[string, 4 | 6, number, string]> = [
      ['10.0.0.0/8', 4, 104, '10.0.0.0/8'],
      ['192.0.2.7', 4, 128, '192.0.2.7/32'],
      ['0.0.0.0/0', 4, 96, '0.0.0.0/0'],
      ['::ffff:10.0.0.0/104', 4, 104, '10.0.0.0/8'],
      ['::FFFF:A00:0/104', 4, 104, '10.0.0.0/8'],
      ['::ffff:0:0/96', 4, 96, '0.0.0.0/0'],
      ['::/0', 6, 0, '::/0'],
      ['FE80:0000::/10', 6, 10, 'fe80::/10'],
      ['2001:db8::1', 6, 128, '2001:db8::1/128'],
    ];
    for (const [text, family, bits, canonical] of table) {
      const cidr = parseCidr(text);
      assert.deepEqual([cidr.family, cidr.bits, cidr.text], [family, bits, canonical], text);
    }
  });
});
