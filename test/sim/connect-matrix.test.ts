import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NAT_KINDS, type NatKind } from '../../src/lab/nat-kind.js';
import type { RouterOptions } from '../../src/lab/topology.js';
import type { Transport } from '../../src/rendezvous/client.js';
import { type ConnectOutcome, type PathKind, runConnect } from '../../src/sim/connect-scenario.js';

/**
 * `natpunch connect --transport auto` between a client behind NAT kind X and one behind kind Y,
 * for every unordered pair of the lab's nine kinds (45), with either side connecting: the path
 * and technique both sides report (their "connected" event), from the sim's runConnect.
 *
 * How each expectation is derived (never from the sim's own output):
 *
 * Reachability, which decides between punching and reversal (src/peer/path-choice.ts planPaths):
 *  - over UDP, only where the server's dial-back from its alternate address gets in
 *    (src/rendezvous/dial-back.ts): endpoint-independent filtering, i.e. full-cone and open
 *    (RFC 4787 §5; lab: connect-reversal sees full-cone × port-restricted use udp-reversal);
 *  - over TCP, only `open`: every lab NAT, and the firewall, drop an unsolicited SYN
 *    (src/lab/nat-ruleset.ts: the cones' DNAT admits UDP only; the rest is conntrack), so the
 *    dial-back to the listener connects only with no NAT in the way (lab: connect-reversal,
 *    `--transport tcp`, open × port-restricted: tcp-reversal).
 *
 * The path `auto` ends on (src/peer/path-choice.ts race: UDP as soon as it is ready; TCP after a
 * 1 s grace for UDP; the relay only when neither is ready by then):
 *  1. direct-udp whenever UDP connects. When it does is the UDP punching verdict of
 *     test/sim/punch-matrix.test.ts (NATLAB-FACTS "Hole-punching facts", test/lab/connect-udp,
 *     RFC 4787 for the rest): not with UDP blocked, not symmetric × symmetric, and a symmetric
 *     side only with a full cone, restricted cone or open host. Reversal changes nothing there:
 *     the reachable side filters endpoint-independently, and its answers come back from the
 *     endpoint the dialer sent to. Technique: udp-reversal when exactly one side is reachable
 *     over UDP, else udp-hole-punch.
 *  2. else direct-tcp by tcp-reversal when exactly one side is reachable over TCP (open);
 *  3. else direct-tcp by tcp-simultaneous-open when neither side is symmetric: TCP punching
 *     from L needs the punching SYN to leave from the kept connection's mapping, which every
 *     lab kind but the symmetric ones reuses for TCP (the `int2ext` map in nat-ruleset.ts covers
 *     TCP; udp-blocked is a port-restricted NAT for TCP), and NATLAB-FACTS: "TCP simultaneous
 *     open through two Linux NATs works" (lab: connect-auto, udp-blocked × port-restricted,
 *     either side connecting: direct-tcp, tcp-*);
 *  4. else the relay: turn-udp when both reach the server over UDP, else turn-tcp (lab:
 *     connect-relay, symmetric-random × symmetric-random: relay, turn-udp).
 */

interface Expected { path: PathKind; technique: string; source: string }

const symmetric = new Set<NatKind>(['symmetric-random', 'symmetric-seq']);
const udpReachable = (k: NatKind): boolean => k === 'full-cone' || k === 'open';
const tcpReachable = (k: NatKind): boolean => k === 'open';

/** The UDP punching verdict of test/sim/punch-matrix.test.ts (its sources: facts, lab, RFC 4787). */
function udpConnects(x: NatKind, y: NatKind): boolean {
  if (x === 'udp-blocked' || y === 'udp-blocked') return false;
  if (symmetric.has(x) && symmetric.has(y)) return false;
  if (!symmetric.has(x) && !symmetric.has(y)) return true;
  const other = symmetric.has(x) ? y : x;
  return other === 'full-cone' || other === 'restricted-cone' || other === 'open';
}

/** Where the lab itself has a verdict for this pair under `--transport auto`. */
function labSource(x: NatKind, y: NatKind): string | undefined {
  const pair = new Set([x, y]);
  const is = (p: NatKind, q: NatKind): boolean => pair.has(p) && pair.has(q) && (p !== q || x === y);
  if (is('udp-blocked', 'port-restricted')) return 'lab: connect-auto';
  if (is('port-restricted', 'port-restricted')) return 'lab: connect-auto, connect-udp';
  if (is('open', 'port-restricted') || is('full-cone', 'port-restricted')) return 'lab: connect-reversal';
  if (is('symmetric-random', 'symmetric-random')) return 'lab: connect-relay';
  const easy = new Set<NatKind>(['full-cone', 'restricted-cone', 'port-restricted', 'eim-random-port', 'symmetric-firewall', 'open']);
  if ((easy.has(x) && easy.has(y)) || is('full-cone', 'symmetric-random') || is('restricted-cone', 'symmetric-random')) return 'lab: connect-udp (path only)';
  return undefined;
}

function expected(x: NatKind, y: NatKind): Expected {
  const lab = labSource(x, y);
  if (udpConnects(x, y)) {
    const reversal = udpReachable(x) !== udpReachable(y);
    return { path: 'direct-udp', technique: reversal ? 'udp-reversal' : 'udp-hole-punch', source: lab ?? 'facts / rfc: UDP punching verdict' };
  }
  if (tcpReachable(x) !== tcpReachable(y)) return { path: 'direct-tcp', technique: 'tcp-reversal', source: lab ?? 'rfc: one side TCP-reachable' };
  if (!symmetric.has(x) && !symmetric.has(y)) return { path: 'direct-tcp', technique: 'tcp-simultaneous-open', source: lab ?? 'facts: TCP simultaneous open through two Linux NATs' };
  const udpToServer = x !== 'udp-blocked' && y !== 'udp-blocked';
  return { path: 'relay', technique: udpToServer ? 'turn-udp' : 'turn-tcp', source: lab ?? 'rfc: a symmetric side, no direct technique' };
}

function check(outcome: ConnectOutcome, want: { path: PathKind; technique: string | RegExp }, label: string): void {
  for (const side of [outcome.connector, outcome.listener]) {
    assert.ok(!('error' in side), `${label}: ${JSON.stringify(outcome)}`);
    assert.equal(side.path, want.path, `${label}: ${JSON.stringify(outcome)}`);
    if (typeof want.technique === 'string') assert.equal(side.technique, want.technique, `${label}: ${JSON.stringify(outcome)}`);
    else assert.match(side.technique, want.technique, `${label}: ${JSON.stringify(outcome)}`);
  }
  assert.ok(outcome.timeToPathMs !== null && outcome.timeToPathMs < 10_000, `${label}: time to path ${outcome.timeToPathMs}`);
}

const pairs: [NatKind, NatKind][] = [];
for (let i = 0; i < NAT_KINDS.length; i++) for (let j = i; j < NAT_KINDS.length; j++) pairs.push([NAT_KINDS[i]!, NAT_KINDS[j]!]);

test('the matrix covers all 45 unordered pairs of the nine lab kinds', () => {
  assert.equal(pairs.length, 45);
});

const started = performance.now();
const rows: string[] = [];

for (const [x, y] of pairs) {
  const want = expected(x, y);
  test(`${x} × ${y}, --transport auto: ${want.path} by ${want.technique}, whichever side connects [${want.source}]`, async () => {
    for (const [a, b] of x === y ? [[x, y]] : [[x, y], [y, x]]) {
      const outcome = await runConnect({ a: a!, b: b!, transport: 'auto', rttMs: 40, seed: `${a}/${b}` });
      check(outcome, want, `${a} connects to ${b}`);
      rows.push(`${a} → ${b}: ${want.path} ${want.technique}, ${outcome.timeToPathMs} ms`);
    }
  });
}

/**
 * The lab's tests that force a transport or set a router option, as they are written there
 * (a1 connects, b1 listens).
 */
const forced: { a: RouterOptions; b: RouterOptions; transport: Transport; path: PathKind; technique: string | RegExp; source: string }[] = [
  ...(['port-restricted', 'full-cone', 'eim-random-port'] as const).map((kind) => ({
    a: { kind }, b: { kind: 'port-restricted' as const }, transport: 'tcp' as const, path: 'direct-tcp' as const, technique: 'tcp-simultaneous-open', source: 'connect-tcp',
  })),
  ...[true, false].flatMap((openConnects) => {
    const [a, b]: RouterOptions[] = openConnects ? [{ kind: 'open' }, { kind: 'port-restricted' }] : [{ kind: 'port-restricted' }, { kind: 'open' }];
    return [
      { a: a!, b: b!, transport: 'udp' as const, path: 'direct-udp' as const, technique: 'udp-reversal', source: 'connect-reversal' },
      { a: a!, b: b!, transport: 'tcp' as const, path: 'direct-tcp' as const, technique: 'tcp-reversal', source: 'connect-reversal' },
    ];
  }),
  { a: { kind: 'udp-blocked' }, b: { kind: 'udp-blocked' }, transport: 'relay', path: 'relay', technique: 'turn-tcp', source: 'connect-relay' },
  // NATPUNCH_NO_NATIVE=1 (the sim does not prime either): by retries alone, unprimed.
  { a: { kind: 'port-restricted', tcpUnsolicited: 'rst' }, b: { kind: 'port-restricted' }, transport: 'tcp', path: 'direct-tcp', technique: 'tcp-simultaneous-open', source: 'connect-tcp-rst' },
];

for (const c of forced) {
  const name = (r: RouterOptions): string => `${r.kind}${r.tcpUnsolicited === 'rst' ? ' (RST on SYN)' : ''}`;
  test(`${name(c.a)} connects to ${name(c.b)}, --transport ${c.transport}: ${c.path} by ${String(c.technique)} [lab: ${c.source}]`, async () => {
    const outcome = await runConnect({ a: c.a, b: c.b, transport: c.transport, rttMs: 40, seed: `${name(c.a)}/${name(c.b)}/${c.transport}` });
    check(outcome, c, `--transport ${c.transport}`);
  });
}

test('the whole matrix ran in well under a minute of wall time', () => {
  const wallMs = performance.now() - started;
  console.log(`# connect matrix: ${rows.length} connects in ${Math.round(wallMs)} ms\n# ${rows.join('\n# ')}`);
  assert.ok(wallMs < 60_000, `${Math.round(wallMs)} ms`);
});
