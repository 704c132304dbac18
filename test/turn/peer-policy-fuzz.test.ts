/**
 * Fuzzing the peer-address policy (STYLE §11): random 16-byte addresses, half of them built in an
 * IPv4-embedding form so that the interesting cases come up often, go through `ipFromBytes` (as
 * a decoded XOR-PEER-ADDRESS would) into `check`. It never throws, its verdict does not depend on
 * the spelling, and it refuses every address an independent oracle (below, written over hex
 * strings rather than the module's byte offsets) says reaches loopback, "this network" or 10/8:
 * the destinations of CVE-2020-26262 and of the IPv4-in-IPv6 bypasses.
 */

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PeerAddressPolicy } from '../../src/turn/peer-policy.js';
import { ipFromBytes } from '../../src/wire/index.js';

const RUNS = Number(process.env['FUZZ_ITERATIONS'] ?? 20_000);
const SEED = Number(process.env['FUZZ_SEED'] ?? 8656);

/** Every IPv4 address (8 hex digits) the oracle believes `hex` (32 hex digits) delivers to. */
function oracleIpv4s(hex: string): string[] {
  const out: string[] = [];
  const zeros = (n: number): string => '0'.repeat(n);
  if (hex.startsWith(zeros(20) + 'ffff')) out.push(hex.slice(24)); // IPv4-mapped
  if (hex.startsWith(zeros(24))) out.push(hex.slice(24)); // IPv4-compatible (and :: / ::1)
  if (hex.startsWith(zeros(16) + 'ffff0000')) out.push(hex.slice(24)); // IPv4-translated
  if (hex.startsWith('2002')) out.push(hex.slice(4, 12)); // 6to4
  if (hex.startsWith('0064ff9b' + zeros(16))) out.push(hex.slice(24)); // NAT64 well-known prefix
  if (hex.startsWith('20010000')) {
    out.push(hex.slice(8, 16)); // Teredo server
    const client = (~parseInt(hex.slice(24), 16) >>> 0).toString(16).padStart(8, '0');
    out.push(client); // Teredo client, de-obfuscated
  }
  return out;
}

/** Whether the oracle says the address reaches somewhere no default policy may relay to. */
function oracleReachesInside(bytes: Uint8Array): boolean {
  const hex = Buffer.from(bytes).toString('hex');
  if (hex === '0'.repeat(32) || hex === '0'.repeat(31) + '1') return true; // :: and ::1
  return oracleIpv4s(hex).some((v4) => v4.startsWith('7f') || v4.startsWith('00') || v4.startsWith('0a'));
}

/** 16 bytes: uniformly random, or an embedding form around a random (often internal) IPv4. */
const address: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ minLength: 16, maxLength: 16 }),
  fc
    .tuple(
      fc.constantFrom('mapped', 'compatible', 'translated', '6to4', 'nat64', 'teredo-server', 'teredo-client'),
      fc.oneof(fc.constantFrom(0x7f, 0x00, 0x0a, 0x08, 0xcb), fc.integer({ min: 0, max: 255 })),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
    )
    .map(([form, firstOctet, noise]) => {
      const b = Uint8Array.from(noise);
      const v4 = [firstOctet, noise[0]!, noise[1]!, noise[2]!];
      const prefix = (p: number[]): void => b.set(p, 0);
      switch (form) {
        case 'mapped':
          prefix([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...v4]);
          break;
        case 'compatible':
          prefix([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...v4]);
          break;
        case 'translated':
          prefix([0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, ...v4]);
          break;
        case '6to4':
          prefix([0x20, 0x02, ...v4]);
          break;
        case 'nat64':
          prefix([0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, ...v4]);
          break;
        case 'teredo-server':
          prefix([0x20, 0x01, 0, 0, ...v4]);
          break;
        case 'teredo-client':
          prefix([0x20, 0x01, 0, 0]);
          b.set(v4.map((x) => x ^ 0xff), 12);
          break;
      }
      return b;
    }),
);

/** Another spelling of the same address: eight uncompressed upper-case groups. */
function longSpelling(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex').toUpperCase().match(/.{4}/g)!.join(':');
}

describe('PeerAddressPolicy fuzzing', () => {
  const policy = new PeerAddressPolicy();

  it(`never throws and refuses whatever reaches loopback, 0/8 or 10/8 (${RUNS} addresses)`, () => {
    fc.assert(
      fc.property(address, (bytes) => {
        const text = ipFromBytes(bytes);
        const verdict = policy.check(text);
        assert.equal(typeof verdict.ok, 'boolean');
        if (oracleReachesInside(bytes)) assert.equal(verdict.ok, false, `${text} reaches inside but was allowed`);
        if (!verdict.ok) assert.ok(verdict.reason.startsWith(text), verdict.reason);
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it('gives the same verdict for every spelling and for the bytes', () => {
    fc.assert(
      fc.property(address, (bytes) => {
        const canonical = policy.check(ipFromBytes(bytes));
        assert.equal(policy.check(longSpelling(bytes)).ok, canonical.ok);
        assert.equal(policy.checkBytes(bytes).ok, canonical.ok);
        const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
        if (mapped) assert.deepEqual(policy.checkBytes(bytes.subarray(12)), policy.checkBytes(bytes));
      }),
      { numRuns: RUNS / 4, seed: SEED + 1 },
    );
  });

  it('never throws on random text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 50 }), fc.stringMatching(/^[0-9a-fA-F:.%]{0,45}$/)), (text) => {
        const verdict = policy.check(text);
        assert.equal(typeof verdict.ok, 'boolean');
      }),
      { numRuns: RUNS / 4, seed: SEED + 2 },
    );
  });

  it('allows what an allow-everything policy allows, except the server itself', () => {
    const open = new PeerAddressPolicy({ allow: ['0.0.0.0/0', '::/0'], serverAddresses: ['203.0.113.1'] });
    fc.assert(
      fc.property(address, (bytes) => {
        const hex = Buffer.from(bytes).toString('hex');
        const self = oracleIpv4s(hex).includes('cb007101');
        assert.equal(open.checkBytes(bytes).ok, !self, ipFromBytes(bytes));
      }),
      { numRuns: RUNS / 4, seed: SEED + 3 },
    );
  });
});
