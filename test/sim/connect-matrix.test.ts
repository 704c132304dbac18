import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NAT_KINDS, type NatKind } from '../../src/lab/nat-kind.js';
import type { RouterOptions } from '../../src/lab/topology.js';
import { type ConnectOutcome, type ConnectScenario, type ConnectSide, type PathKind, runConnect } from '../../src/sim/connect-scenario.js';

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
 * One transport forced, every pair (the lab forces transports for a few pairs only: those are
 * checked below as the lab writes them). Derived as above, one technique at a time:
 *  - `--transport udp`: direct-udp exactly where UDP connects (rule 1), else an error;
 *  - `--transport tcp`: tcp-reversal when exactly one side is open (rule 2); else simultaneous
 *    open where neither side is symmetric (rule 3; two open hosts too: each SYN meets the other
 *    side's connecting socket); else an error, since nothing else is tried.
 */
function forcedExpectation(x: NatKind, y: NatKind, transport: 'udp' | 'tcp'): { path: PathKind; technique: string } | undefined {
  if (transport === 'udp') {
    if (!udpConnects(x, y)) return undefined;
    return { path: 'direct-udp', technique: udpReachable(x) !== udpReachable(y) ? 'udp-reversal' : 'udp-hole-punch' };
  }
  if (tcpReachable(x) !== tcpReachable(y)) return { path: 'direct-tcp', technique: 'tcp-reversal' };
  if (!symmetric.has(x) && !symmetric.has(y)) return { path: 'direct-tcp', technique: 'tcp-simultaneous-open' };
  return undefined;
}

for (const transport of ['udp', 'tcp'] as const) {
  test(`--transport ${transport}, all 45 pairs, either side connecting: the one technique's verdict, or an error`, async () => {
    for (const [x, y] of pairs) {
      const want = forcedExpectation(x, y, transport);
      for (const [a, b] of x === y ? [[x, y]] : [[x, y], [y, x]]) {
        const outcome = await runConnect({ a: a!, b: b!, transport, rttMs: 40, seed: `${a}/${b}/${transport}` });
        const label = `${a} connects to ${b}, --transport ${transport}`;
        if (want) check(outcome, want, label);
        else for (const side of [outcome.connector, outcome.listener]) assert.ok('error' in side, `${label}: ${JSON.stringify(outcome)}`);
      }
    }
  });
}

/**
 * The lab's tests that force a transport or set a router option, as they are written there
 * (a1 connects, b1 listens), each with the lab's own assertions.
 */
interface LabCase {
  name: string;
  source: string;
  scenario: Omit<ConnectScenario, 'seed'>;
  expect(outcome: ConnectOutcome): void;
}

const techniqueOf = (side: ConnectSide): string | undefined => ('technique' in side ? side.technique : undefined);
const both = (path: PathKind, technique: string | RegExp) => (o: ConnectOutcome): void => check(o, { path, technique }, 'both sides');
const rst: RouterOptions = { kind: 'port-restricted', tcpUnsolicited: 'rst' };
const drop: RouterOptions = { kind: 'port-restricted' };
/**
 * The lab has no core delay and starts the two punches a little apart (each side's start is its
 * own receipt of the punch message plus the same delay): first SYNs that do not cross. The sim
 * says so with rttMs 0 and a start skew; with the default (equal starts, 40 ms RTT) they cross.
 */
const labTiming = { rttMs: 0, startSkewMs: 3 };

const labCases: LabCase[] = [
  ...(['port-restricted', 'full-cone', 'eim-random-port'] as const).map((kind): LabCase => ({
    name: `${kind} × port-restricted, --transport tcp: direct-tcp by simultaneous open`, source: 'connect-tcp',
    scenario: { a: kind, b: 'port-restricted', transport: 'tcp' },
    expect: (o) => { both('direct-tcp', /^tcp-/)(o); assert.equal(techniqueOf(o.connector), 'tcp-simultaneous-open'); },
  })),
  ...[true, false].flatMap((openConnects): LabCase[] => {
    const [a, b]: NatKind[] = openConnects ? ['open', 'port-restricted'] : ['port-restricted', 'open'];
    const who = openConnects ? 'the open peer connects' : 'the NATed peer connects';
    return [
      { name: `open × port-restricted, --transport udp, ${who}: udp-reversal`, source: 'connect-reversal', scenario: { a: a!, b: b!, transport: 'udp' }, expect: both('direct-udp', 'udp-reversal') },
      { name: `open × port-restricted, --transport tcp, ${who}: tcp-reversal`, source: 'connect-reversal', scenario: { a: a!, b: b!, transport: 'tcp' }, expect: both('direct-tcp', 'tcp-reversal') },
    ];
  }),
  {
    name: 'udp-blocked × udp-blocked, --transport relay: each peer reaches the relay over TCP', source: 'connect-relay',
    scenario: { a: 'udp-blocked', b: 'udp-blocked', transport: 'relay' }, expect: both('relay', 'turn-tcp'),
  },
  {
    name: '--transport tcp, RST-on-SYN port-restricted × port-restricted: direct-tcp', source: 'connect-tcp-rst',
    scenario: { a: rst, b: drop, transport: 'tcp', ...labTiming }, expect: both('direct-tcp', /^tcp-/),
  },
  {
    name: '--transport tcp, RST-on-SYN NATs on both sides: direct-tcp by low-TTL priming', source: 'connect-tcp-rst',
    scenario: { a: rst, b: rst, transport: 'tcp', ...labTiming },
    expect: (o) => { both('direct-tcp', /^tcp-/)(o); assert.equal(techniqueOf(o.connector), 'tcp-ttl-primed', JSON.stringify(o)); },
  },
  {
    name: '--transport tcp without the addon, one RST-on-SYN NAT: direct-tcp by retries alone, unprimed', source: 'connect-tcp-rst',
    scenario: { a: rst, b: drop, transport: 'tcp', noNative: 'both', ...labTiming }, expect: both('direct-tcp', 'tcp-simultaneous-open'),
  },
  {
    name: '--transport tcp without the addon, RST-on-SYN NATs on both sides: ERR_TRANSPORT naming the refusals', source: 'connect-tcp-rst',
    scenario: { a: rst, b: rst, transport: 'tcp', noNative: 'both', ...labTiming },
    expect: (o) => {
      assert.ok('error' in o.connector, JSON.stringify(o));
      assert.match(o.connector.error, /^TCP punching from port \d+: no connection within \d+ ms after \d+ connects to .*203\.0\.113\.20:\d+ \(ECONNREFUSED\); not primed: /);
    },
  },
  {
    name: '--transport tcp without the addon, RST-on-SYN NATs on both sides, first SYNs that cross: plain simultaneous open', source: 'connect-tcp-rst (its other branch)',
    scenario: { a: rst, b: rst, transport: 'tcp', noNative: 'both', rttMs: 40 }, expect: both('direct-tcp', 'tcp-simultaneous-open'),
  },
  ...(['listener', 'connector'] as const).map((primer): LabCase => ({
    name: `--transport tcp, RST-on-SYN NATs on both sides, only the ${primer} can prime: direct-tcp`, source: 'connect-tcp-rst',
    scenario: { a: rst, b: rst, transport: 'tcp', noNative: primer === 'listener' ? 'connector' : 'listener', ...labTiming },
    expect: (o) => {
      both('direct-tcp', /^tcp-/)(o);
      const plain = primer === 'connector' ? o.listener : o.connector;
      assert.equal(techniqueOf(plain), 'tcp-simultaneous-open', JSON.stringify(o));
    },
  })),
];

for (const c of labCases) {
  test(`${c.name} [lab: ${c.source}]`, async () => {
    c.expect(await runConnect({ ...c.scenario, rttMs: c.scenario.rttMs ?? 40, seed: c.name }));
  });
}

test('the whole matrix ran in well under a minute of wall time', () => {
  const wallMs = performance.now() - started;
  console.log(`# connect matrix: ${rows.length} connects in ${Math.round(wallMs)} ms\n# ${rows.join('\n# ')}`);
  assert.ok(wallMs < 60_000, `${Math.round(wallMs)} ms`);
});
