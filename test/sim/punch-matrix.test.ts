import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NAT_KINDS, type NatKind } from '../../src/lab/nat-kind.js';
import type { CandidateType } from '../../src/punch/candidate.js';
import { runUdpPunch } from '../../src/sim/punch-scenario.js';

/**
 * UdpCheckSession between a client behind NAT kind X and one behind kind Y, for every unordered
 * pair of the lab's nine kinds (45), each run with either side controlling: connected or not,
 * and the candidate type of the pair each side nominated.
 *
 * Where each verdict comes from:
 *  - facts: NATLAB-FACTS.md "Hole-punching facts" (punching alone, in the kernel lab): every
 *    cone × cone pair works; full/restricted cone × symmetric works; symmetric firewall ×
 *    port-restricted works; port-restricted × symmetric-random fails, symmetric × symmetric
 *    fails, UDP blocked fails; symmetric-seq × port-restricted fails without prediction (which
 *    natpunch does not do yet).
 *  - lab: test/lab/connect-udp.test.ts sees direct-udp between these kinds (the easy list). A
 *    peer may get there by reversal (test/lab/connect-reversal.test.ts) rather than punching, so
 *    the punching verdict is also derived from RFC 4787: an open or firewalled host is at its
 *    own public address, and a mapping opened toward the other side admits it.
 *  - rfc: no lab verdict. Derived from RFC 4787 §4.1/§5: a symmetric (APDM) side sends from a
 *    new mapping per destination, so it can reach the other side only if that side filters
 *    endpoint-independently (full cone, open) or by address only (restricted cone, which has
 *    sent to the symmetric NAT's address); an APDF side (port-restricted, eim-random-port,
 *    symmetric firewall) never learns that port.
 *
 * Candidate types (RFC 8445 §5.1.1): the lab reports no candidate types, so they are derived.
 * Both sides endpoint-independent (or not translated): each nominates the other's
 * server-reflexive candidate (for open and firewall hosts the host address, which
 * candidateTypeOf calls srflx because it is public). A symmetric side reaches the other from a
 * mapping nobody told it about, so the other side knows it as peer-reflexive (prflx), while the
 * symmetric side nominates the other's srflx. Host candidates never win: the two LANs are not
 * routed to each other.
 */

type Verdict = { connected: false; source: string } | { connected: true; source: string; types: [CandidateType, CandidateType] };

const cone = new Set<NatKind>(['full-cone', 'restricted-cone', 'port-restricted', 'eim-random-port']);
const symmetric = new Set<NatKind>(['symmetric-random', 'symmetric-seq']);
const reachesSymmetric = new Set<NatKind>(['full-cone', 'restricted-cone', 'open']);

/** The expected outcome for x × y, x's nominated type first. */
function verdict(x: NatKind, y: NatKind): Verdict {
  const has = (k: NatKind): boolean => x === k || y === k;
  if (has('udp-blocked')) return { connected: false, source: 'facts: UDP blocked' };
  if (symmetric.has(x) && symmetric.has(y)) return { connected: false, source: 'facts: symmetric × symmetric' };
  if (symmetric.has(x) || symmetric.has(y)) {
    const [sym, other] = symmetric.has(x) ? [x, y] : [y, x];
    const source = (other === 'full-cone' || other === 'restricted-cone') ? 'facts: full/restricted cone × symmetric'
      : other === 'port-restricted' ? (sym === 'symmetric-random' ? 'facts: port-restricted × symmetric random' : 'facts: symmetric-seq × port-restricted, no prediction')
        : 'rfc';
    if (!reachesSymmetric.has(other)) return { connected: false, source };
    return { connected: true, source, types: symmetric.has(x) ? ['srflx', 'prflx'] : ['prflx', 'srflx'] };
  }
  const source = cone.has(x) && cone.has(y) ? 'facts: cone × cone'
    : has('symmetric-firewall') && has('port-restricted') ? 'facts: symmetric firewall × port-restricted'
      : 'lab: connect-udp direct-udp';
  return { connected: true, source, types: ['srflx', 'srflx'] };
}

const pairs: [NatKind, NatKind][] = [];
for (let i = 0; i < NAT_KINDS.length; i++) for (let j = i; j < NAT_KINDS.length; j++) pairs.push([NAT_KINDS[i]!, NAT_KINDS[j]!]);

test('the matrix covers all 45 unordered pairs of the nine lab kinds', () => {
  assert.equal(pairs.length, 45);
});

const rows: string[] = [];
const started = performance.now();

for (const [x, y] of pairs) {
  const expected = verdict(x, y);
  const shape = expected.connected ? `connects (${expected.types.join(' / ')})` : 'does not connect';
  test(`${x} × ${y} ${shape}, whichever side controls [${expected.source}]`, async () => {
    for (const controlling of ['first', 'second'] as const) {
      const outcome = await runUdpPunch({ a: x, b: y, rttMs: 40, controlling, seed: `${x}/${y}` });
      const label = `${x} × ${y}, ${controlling} controlling: ${JSON.stringify(outcome)}`;
      assert.equal(outcome.connected, expected.connected, label);
      if (expected.connected) {
        assert.deepEqual([outcome.first.result?.type, outcome.second.result?.type], expected.types, label);
      } else {
        // A failed punch fails on both sides, within the session's bound, with a clear error.
        assert.match(String(outcome.first.error), /no working path/, label);
        assert.match(String(outcome.second.error), /no working path/, label);
      }
      if (controlling === 'first') {
        rows.push(`| ${x} | ${y} | ${outcome.connected ? 'yes' : 'no'} | ${outcome.first.result?.type ?? '–'} / ${outcome.second.result?.type ?? '–'} | ${outcome.nominationMs ?? '–'} | ${expected.source} |`);
      }
    }
  });
}

test('the whole matrix runs in well under a minute of wall time', () => {
  const wallMs = performance.now() - started;
  if (process.env['NATPUNCH_SIM_TABLE'] === '1') {
    console.log(['| a (controlling) | b | connected | nominated a / b | ms to nominate (40 ms RTT) | verdict from |', '|---|---|---|---|---|---|', ...rows].join('\n'));
  }
  assert.equal(rows.length, 45);
  assert.ok(wallMs < 30_000, `the matrix took ${Math.round(wallMs)} ms`);
});

test('two clients behind the same port-restricted NAT connect on their host candidates, hairpin on or off (as test/lab/connect-udp.test.ts)', async () => {
  for (const hairpin of [false, true]) {
    const outcome = await runUdpPunch({ a: { kind: 'port-restricted', hairpin, clients: 2 }, between: ['a2', 'a1'], rttMs: 40 });
    assert.equal(outcome.connected, true, JSON.stringify(outcome));
    assert.deepEqual([outcome.first.result?.type, outcome.second.result?.type], ['host', 'host']);
    assert.match(String(outcome.first.result?.remote.address), /^10\./);
  }
});

test('port-restricted behind a port-restricted carrier NAT × port-restricted connects (as the lab\'s double-NAT test)', async () => {
  const outcome = await runUdpPunch({ a: { kind: 'port-restricted', carrier: 'port-restricted' }, b: 'port-restricted', rttMs: 40 });
  assert.equal(outcome.connected, true, JSON.stringify(outcome));
  assert.match(outcome.second.result!.remote.address, /^203\.0\.113\.100$/, 'b reaches a at the carrier\'s address');
});

test('10 % loss on one NAT\'s WAN link still connects (as the lab\'s lossy-link test)', async () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const outcome = await runUdpPunch({ a: { kind: 'port-restricted', lossPercent: 10 }, b: 'full-cone', rttMs: 40, seed });
    assert.equal(outcome.connected, true, `seed ${seed}: ${JSON.stringify(outcome)}`);
  }
});
