/** Transport address text: parsing, formatting and canonical IP text (checked against libuv). */

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SocketAddress } from 'node:net';
import fc from 'fast-check';
import { formatAddress, ipFromBytes, ipToBytes, parseAddress, splitHostPort, type TransportAddress } from '../../src/wire/index.js';
import { assertUsageError, toHex } from './helpers.js';

describe('formatAddress', () => {
  it('writes IPv4 as ip:port and IPv6 as [ip]:port', () => {
    assert.equal(formatAddress({ family: 4, address: '192.0.2.1', port: 3478 }), '192.0.2.1:3478');
    assert.equal(formatAddress({ family: 6, address: '::1', port: 5 }), '[::1]:5');
  });
});

describe('parseAddress', () => {
  const table: Array<[string, number | undefined, TransportAddress]> = [
    ['192.0.2.1:3478', undefined, { family: 4, address: '192.0.2.1', port: 3478 }],
    ['192.0.2.1', 3478, { family: 4, address: '192.0.2.1', port: 3478 }],
    ['192.0.2.1:0', 3478, { family: 4, address: '192.0.2.1', port: 0 }],
    ['[::1]:5', undefined, { family: 6, address: '::1', port: 5 }],
    ['[::1]', 7, { family: 6, address: '::1', port: 7 }],
    ['::1', 7, { family: 6, address: '::1', port: 7 }],
    ['[2001:DB8:0:0:0:0:0:1]:65535', undefined, { family: 6, address: '2001:db8::1', port: 65535 }],
    ['2001:0db8::0001', 1, { family: 6, address: '2001:db8::1', port: 1 }],
    ['[::ffff:192.0.2.1]:9', undefined, { family: 6, address: '::ffff:192.0.2.1', port: 9 }],
  ];
  for (const [text, defaultPort, expected] of table) {
    it(`parses "${text}"${defaultPort === undefined ? '' : ` with default port ${defaultPort}`}`, () => {
      assert.deepEqual(parseAddress(text, defaultPort), expected);
    });
  }

  const rejections: Array<[string, number | undefined, RegExp]> = [
    ['', 1, /expected "host:port", got an empty string/],
    ['192.0.2.1', undefined, /no port given and no default port; write "192.0.2.1:PORT"/],
    ['192.0.2.1:', 1, /port "" is not a decimal number/],
    ['192.0.2.1:http', 1, /port "http" is not a decimal number/],
    ['192.0.2.1:-1', 1, /port "-1" is not a decimal number/],
    ['192.0.2.1:65536', 1, /port 65536 is out of range 0-65535/],
    ['192.0.2.1:123456', 1, /port "123456" is not a decimal number/],
    ['[::1', 1, /"\[" without a closing "\]"/],
    ['[::1]x', 1, /expected ":port" after "\]", got "x"/],
    ['[]:1', 1, /the host is empty/],
    [':1', 1, /the host is empty/],
    ['stun.example.org:3478', undefined, /"stun.example.org" is not an IP address; resolve host names before parsing/],
    ['256.0.0.1:1', undefined, /"256.0.0.1" is not an IP address/],
    ['[fe80::1%eth0]:1', undefined, /IPv6 zone ids \("%eth0"\) cannot be carried in STUN/],
  ];
  for (const [text, defaultPort, message] of rejections) {
    it(`rejects "${text}" with a UsageError`, () => assertUsageError(() => parseAddress(text, defaultPort), message));
  }

  it('rejects a default port out of range', () => {
    assertUsageError(() => parseAddress('192.0.2.1', 70000), /port 70000 is out of range/);
  });
});

describe('splitHostPort', () => {
  it('keeps host names for the caller to resolve', () => {
    assert.deepEqual(splitHostPort('stun.example.org:3478'), { host: 'stun.example.org', port: 3478 });
    assert.deepEqual(splitHostPort('stun.example.org', 3478), { host: 'stun.example.org', port: 3478 });
    assert.deepEqual(splitHostPort('[::1]:1'), { host: '::1', port: 1 });
  });
});

describe('ipToBytes and ipFromBytes', () => {
  it('convert IPv4 and IPv6 text to bytes and back', () => {
    assert.equal(toHex(ipToBytes('192.0.2.1')), 'c0000201');
    assert.equal(toHex(ipToBytes('2001:db8::1')), '20010db8000000000000000000000001');
    assert.equal(toHex(ipToBytes('::ffff:1.2.3.4')), '00000000000000000000ffff01020304');
    assert.equal(toHex(ipToBytes('::')), '0'.repeat(32));
    assert.equal(ipFromBytes(ipToBytes('1:0:0:1:0:0:0:1')), '1:0:0:1::1');
  });

  it('refuse text that is not an IP literal and byte counts other than 4 and 16', () => {
    assertUsageError(() => ipToBytes('example.com'), /"example.com" is not an IPv4 or IPv6 address/);
    assertUsageError(() => ipToBytes('fe80::1%1'), /not an IPv4 or IPv6 address/);
    assertUsageError(() => ipFromBytes(new Uint8Array(5)), /an IP address has 4 or 16 bytes, got 5/);
  });

  it("produce the same canonical IPv6 text as libuv's inet_ntop for any 16 bytes", () => {
    // Zero-heavy words make the :: compression and mixed-notation cases common.
    const word = fc.oneof(fc.constant(0), fc.constant(0xffff), fc.integer({ min: 0, max: 0xffff }));
    fc.assert(
      fc.property(fc.array(word, { minLength: 8, maxLength: 8 }), (words) => {
        const bytes = new Uint8Array(16);
        words.forEach((w, i) => {
          bytes[2 * i] = w >> 8;
          bytes[2 * i + 1] = w & 0xff;
        });
        const longhand = words.map((w) => w.toString(16)).join(':');
        const expected = new SocketAddress({ address: longhand, family: 'ipv6' }).address;
        assert.equal(ipFromBytes(bytes), expected);
        assert.deepEqual(ipToBytes(expected), bytes);
      }),
      { numRuns: 3000 },
    );
  });

  it('round-trip any 4 bytes through dotted decimal', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), (bytes) => {
        assert.deepEqual(ipToBytes(ipFromBytes(bytes)), bytes);
      }),
    );
  });
});
