import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NAT_KINDS, type NatKind } from '../../src/lab/nat-kind.js';
import type { RouterOptions } from '../../src/lab/topology.js';
import { SEQUENTIAL_PORT_BASE, SEQUENTIAL_PORT_COUNT } from '../../src/lab/nat-ruleset.js';
import { SERVER_ADDRESSES } from '../../src/lab/topology.js';
import type { TraceEvent } from '../../src/sim/network.js';
import { type ConnectOutcome, type ConnectScenario, type ConnectSide, type PathKind, runConnect } from '../../src/sim/connect-scenario.js';

/**
 * `natpunch connect --transport auto` between a client behind NAT kind X and one behind kind Y,
 * for every unordered pair of the lab's nine kinds (45), with either side connecting: the path
 * and technique each side reports (its "connected" event), from the sim's runConnect.
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
 * Prediction (src/punch/port-prediction.ts): only a NAT that hands out ports from a counter is
 * predicted, i.e. symmetric-seq (natTruth: portAllocation 'sequential'); its peer signs the
 * window its next flows take, over UDP and TCP, and the other side aims at every port of it
 * (lab: connect-prediction, symmetric-seq × port-restricted and × symmetric-seq, over UDP and
 * over TCP). Toward any side that aims at the window (every kind but symmetric-random, whose
 * own flows toward the window leave from ports nobody signed), symmetric-seq then behaves like
 * an endpoint-independent side.
 *
 * The path `auto` ends on (src/peer/path-choice.ts race: UDP as soon as it is ready; TCP after a
 * 1 s grace for UDP; the relay only when neither is ready by then):
 *  1. direct-udp whenever UDP connects: not with UDP blocked (facts), not with
 *     symmetric-random unless the other side is a full cone, restricted cone or open host
 *     (facts: full/restricted cone × symmetric works, port-restricted × symmetric random and
 *     symmetric × symmetric fail; RFC 4787 §4.1/§5 for the rest, as test/sim/punch-matrix
 *     derives it), and everywhere else (facts: every cone × cone pair; lab: connect-udp's easy
 *     pairs; symmetric-seq by prediction, above). Reversal changes nothing there: the reachable
 *     side filters endpoint-independently, and its answers come back from where the dialer sent.
 *     One exception, from counting: symmetric-seq × symmetric-seq. Each side's TCP punch opens
 *     a flow to every port of the other side's TCP window at the start (tcpSimultaneousOpen
 *     connects to all targets at once: 16 window ports, plus a host candidate and the mapping),
 *     and every flow takes the NAT's next counter value (NATLAB-FACTS: the counter is shared by
 *     every flow, TCP included). Those 18 flows use up the 16 values the UDP window promised, so
 *     the UDP checks leave from ports the other side never aims at: UDP does not connect under
 *     `auto` (it does under `--transport udp`, lab: connect-prediction), and TCP does (rule 3).
 *  2. else direct-tcp by tcp-reversal when exactly one side is reachable over TCP (open);
 *  3. else direct-tcp by TCP punching when neither side is symmetric-random: the punching SYN
 *     leaves from the kept connection's mapping on every endpoint-independent kind (the
 *     `int2ext` map in nat-ruleset.ts covers TCP; udp-blocked is a port-restricted NAT for TCP),
 *     from the predicted window on symmetric-seq, and NATLAB-FACTS: "TCP simultaneous open
 *     through two Linux NATs works" (lab: connect-auto, udp-blocked × port-restricted: direct-tcp);
 *  4. else the relay: turn-udp when both reach the server over UDP, else turn-tcp (lab:
 *     connect-relay, symmetric-random × symmetric-random: relay, turn-udp).
 *
 * The lab's own matrix agrees on the path of every pair: `natpunch lab matrix` (test/lab/
 * lab-matrix.test.ts; the README records a full run: 45 of 45 connect, the 6 through the relay
 * being symmetric-random against port-restricted, eim-random-port, symmetric-firewall,
 * symmetric-seq, udp-blocked and itself), and for symmetric-seq × symmetric-seq it allows either
 * direct path by prediction.
 *
 * Each side's technique is establish.ts's naming rule applied to the pair it ends on:
 *  - UDP: the side that only answers (reachable, facing an unreachable one) has no candidates
 *    of its own, so its pair is peer-reflexive; otherwise its pair is the other's host candidate
 *    when the other has no NAT (open and firewall hosts sign their public address as host,
 *    rendezvous/client.ts), a port of the other's predicted window when the other predicts,
 *    peer-reflexive when the other is symmetric-random, else the other's srflx. Then
 *    udp-prediction if the pair is predicted, or this side predicts and the pair is not a host
 *    candidate; else udp-hole-punch when both punch, udp-reversal when one answers.
 *  - TCP punching: the connection completes to the other's window when it predicts, to its host
 *    candidate when it has no NAT, else to its mapping; tcp-prediction by the same rule as UDP,
 *    else tcp-simultaneous-open (nothing in the 45 pairs sends a RST, so nothing primes).
 */

type Techniques = [forX: string, forY: string];
interface Expected { path: PathKind; techniques: Techniques; source: string }

const udpReachable = (k: NatKind): boolean => k === 'full-cone' || k === 'open';
const tcpReachable = (k: NatKind): boolean => k === 'open';
const predicts = (k: NatKind): boolean => k === 'symmetric-seq';
const signsHost = (k: NatKind): boolean => k === 'open' || k === 'symmetric-firewall';

function udpConnects(x: NatKind, y: NatKind): boolean {
  if (x === 'udp-blocked' || y === 'udp-blocked') return false;
  if (x === 'symmetric-random' || y === 'symmetric-random') {
    const other = x === 'symmetric-random' ? y : x;
    return other === 'full-cone' || other === 'restricted-cone' || other === 'open';
  }
  return true;
}

function tcpPunchConnects(x: NatKind, y: NatKind): boolean {
  return x !== 'symmetric-random' && y !== 'symmetric-random';
}

/** What `self` reports for a direct UDP path to `other` (establish.ts udpTechnique). */
function udpTechnique(self: NatKind, other: NatKind): string {
  const answers = udpReachable(self) && !udpReachable(other);
  const punch = udpReachable(self) === udpReachable(other);
  const pair = answers ? 'prflx' : signsHost(other) ? 'host' : predicts(other) ? 'predicted' : other === 'symmetric-random' ? 'prflx' : 'srflx';
  if (pair === 'predicted' || (predicts(self) && pair !== 'host')) return 'udp-prediction';
  return punch ? 'udp-hole-punch' : 'udp-reversal';
}

/** What `self` reports for a punched TCP path to `other` (establish.ts tcpPunchTechnique). */
function tcpTechnique(self: NatKind, other: NatKind): string {
  const winner = predicts(other) ? 'predicted' : signsHost(other) ? 'host' : 'srflx';
  return winner === 'predicted' || (predicts(self) && winner !== 'host') ? 'tcp-prediction' : 'tcp-simultaneous-open';
}

/** Where the lab itself has a verdict for this pair under `--transport auto`. */
function labSource(x: NatKind, y: NatKind): string | undefined {
  const pair = new Set([x, y]);
  const is = (p: NatKind, q: NatKind): boolean => pair.has(p) && pair.has(q) && (p !== q || x === y);
  if (is('udp-blocked', 'port-restricted')) return 'lab: connect-auto';
  if (is('port-restricted', 'port-restricted')) return 'lab: connect-auto, connect-udp';
  if (is('open', 'port-restricted') || is('full-cone', 'port-restricted')) return 'lab: connect-reversal';
  if (is('symmetric-random', 'symmetric-random')) return 'lab: connect-relay, lab-matrix';
  const easy = new Set<NatKind>(['full-cone', 'restricted-cone', 'port-restricted', 'eim-random-port', 'symmetric-firewall', 'open']);
  if ((easy.has(x) && easy.has(y)) || is('full-cone', 'symmetric-random') || is('restricted-cone', 'symmetric-random')) return 'lab: connect-udp (path only)';
  if (is('symmetric-seq', 'port-restricted')) return 'lab: connect-prediction (--transport udp and tcp), lab-matrix';
  if (is('symmetric-seq', 'symmetric-seq')) return 'lab: lab-matrix (a direct path by prediction, either one); counting: the TCP punch uses up the UDP window';
  if (is('port-restricted', 'symmetric-random') || is('symmetric-seq', 'symmetric-random')) return 'lab: lab-matrix';
  // The README records a full `natpunch lab matrix` run: the relay for symmetric-random against
  // port-restricted, eim-random-port, symmetric-firewall, symmetric-seq, udp-blocked and itself.
  if (pair.has('symmetric-random') && (pair.has('eim-random-port') || pair.has('symmetric-firewall') || pair.has('udp-blocked'))) return 'lab: lab-matrix full run (README)';
  return undefined;
}

function expected(x: NatKind, y: NatKind): Expected {
  const lab = labSource(x, y);
  const tcpEatsTheWindow = predicts(x) && predicts(y);
  if (udpConnects(x, y) && !tcpEatsTheWindow) return { path: 'direct-udp', techniques: [udpTechnique(x, y), udpTechnique(y, x)], source: lab ?? 'facts / rfc: UDP verdict' };
  if (tcpReachable(x) !== tcpReachable(y)) return { path: 'direct-tcp', techniques: ['tcp-reversal', 'tcp-reversal'], source: lab ?? 'rfc: one side TCP-reachable' };
  if (tcpPunchConnects(x, y)) return { path: 'direct-tcp', techniques: [tcpTechnique(x, y), tcpTechnique(y, x)], source: lab ?? 'facts: TCP simultaneous open through two Linux NATs' };
  const udpToServer = x !== 'udp-blocked' && y !== 'udp-blocked';
  const relay = udpToServer ? 'turn-udp' : 'turn-tcp';
  return { path: 'relay', techniques: [relay, relay], source: lab ?? 'rfc: symmetric-random, no direct technique' };
}

function check(outcome: ConnectOutcome, want: { path: PathKind; techniques: [string | RegExp, string | RegExp] }, label: string): void {
  const sides = [outcome.connector, outcome.listener];
  for (const [i, side] of sides.entries()) {
    assert.ok(!('error' in side), `${label}: ${JSON.stringify(outcome)}`);
    assert.equal(side.path, want.path, `${label}: ${JSON.stringify(outcome)}`);
    const technique = want.techniques[i]!;
    if (typeof technique === 'string') assert.equal(side.technique, technique, `${label}, ${i === 0 ? 'connector' : 'listener'}: ${JSON.stringify(outcome)}`);
    else assert.match(side.technique, technique, `${label}: ${JSON.stringify(outcome)}`);
  }
  assert.ok(outcome.timeToPathMs !== null && outcome.timeToPathMs < 10_000, `${label}: time to path ${outcome.timeToPathMs}`);
}

const pairs: [NatKind, NatKind][] = [];
for (let i = 0; i < NAT_KINDS.length; i++) for (let j = i; j < NAT_KINDS.length; j++) pairs.push([NAT_KINDS[i]!, NAT_KINDS[j]!]);

test('the matrix covers all 45 unordered pairs of the nine lab kinds', () => {
  assert.equal(pairs.length, 45);
});

test('the derived expectations agree with the lab matrix\'s full run (README): 39 pairs direct, the relay for symmetric-random against six kinds', () => {
  const relay = pairs.filter(([x, y]) => expected(x, y).path === 'relay').map(([x, y]) => (x === 'symmetric-random' ? y : x)).sort();
  assert.deepEqual(relay, ['eim-random-port', 'port-restricted', 'symmetric-firewall', 'symmetric-random', 'symmetric-seq', 'udp-blocked']);
  assert.equal(pairs.length - relay.length, 39);
});

const started = performance.now();
const rows: string[] = [];

for (const [x, y] of pairs) {
  const want = expected(x, y);
  const techniques = want.techniques[0] === want.techniques[1] ? want.techniques[0] : `${want.techniques[0]} / ${want.techniques[1]}`;
  test(`${x} × ${y}, --transport auto: ${want.path} by ${techniques}, whichever side connects [${want.source}]`, async () => {
    for (const [a, b, techniques] of x === y ? [[x, y, want.techniques]] as const : [[x, y, want.techniques], [y, x, [want.techniques[1], want.techniques[0]]]] as const) {
      const outcome = await runConnect({ a, b, transport: 'auto', rttMs: 40, seed: `${a}/${b}` });
      check(outcome, { path: want.path, techniques: [...techniques] as [string, string] }, `${a} connects to ${b}`);
      rows.push(`${a} → ${b}: ${want.path} ${techniques.join(' / ')}, ${outcome.timeToPathMs} ms`);
    }
  });
}

/**
 * One transport forced, every pair (the lab forces transports for a few pairs only: those are
 * checked below as the lab writes them). Derived as above, one technique at a time:
 *  - `--transport udp`: direct-udp exactly where UDP connects (rule 1), else an error;
 *  - `--transport tcp`: tcp-reversal when one side is open (rule 2; two open hosts too: the
 *    initiator dials the other's listener, path-choice.ts); else TCP punching where neither
 *    side is symmetric-random (rule 3); else an error, since nothing else is tried.
 */
function forcedExpectation(x: NatKind, y: NatKind, transport: 'udp' | 'tcp'): { path: PathKind; techniques: Techniques } | undefined {
  if (transport === 'udp') return udpConnects(x, y) ? { path: 'direct-udp', techniques: [udpTechnique(x, y), udpTechnique(y, x)] } : undefined;
  if (tcpReachable(x) || tcpReachable(y)) return { path: 'direct-tcp', techniques: ['tcp-reversal', 'tcp-reversal'] };
  return tcpPunchConnects(x, y) ? { path: 'direct-tcp', techniques: [tcpTechnique(x, y), tcpTechnique(y, x)] } : undefined;
}

for (const transport of ['udp', 'tcp'] as const) {
  test(`--transport ${transport}, all 45 pairs, either side connecting: the one technique's verdict, or an error`, async () => {
    for (const [x, y] of pairs) {
      for (const [a, b] of x === y ? [[x, y]] as const : [[x, y], [y, x]] as const) {
        const want = forcedExpectation(a, b, transport);
        const outcome = await runConnect({ a, b, transport, rttMs: 40, seed: `${a}/${b}/${transport}` });
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
const both = (path: PathKind, technique: string | RegExp) => (o: ConnectOutcome): void => check(o, { path, techniques: [technique, technique] }, 'both sides');
/** The remote a side reports is a port of the symmetric-seq NAT's counter (40000–40999). */
function inCounter(side: ConnectSide): void {
  const port = 'remote' in side ? Number(side.remote.split(':')[1]) : NaN;
  assert.ok(port >= SEQUENTIAL_PORT_BASE && port < SEQUENTIAL_PORT_BASE + SEQUENTIAL_PORT_COUNT, JSON.stringify(side));
}
/**
 * The lab counts, on `host`'s router, packets that start a conntrack flow (ct direction original)
 * toward anything but the server. Here: a datagram `host` sends to an endpoint that has sent it
 * nothing yet on that port, or a SYN without ACK.
 */
function flowsStartedBy(host: string, starts: string[], only?: 'udp' | 'tcp'): (event: TraceEvent) => void {
  const heard = new Set<string>();
  const server = new Set<string>(SERVER_ADDRESSES);
  return (e) => {
    const d = e.datagram;
    if (e.node !== host || server.has(d.src.address) || server.has(d.dst.address)) return;
    if (only !== undefined && (d.tcp ? 'tcp' : 'udp') !== only) return;
    if (e.event === 'deliver') heard.add(`${d.dst.port}<${d.src.address}:${d.src.port}`);
    if (e.event !== 'send') return;
    const starting = d.tcp ? d.tcp.syn === true && !d.tcp.ack : !heard.has(`${d.src.port}<${d.dst.address}:${d.dst.port}`);
    if (starting) starts.push(`${d.tcp ? 'tcp' : 'udp'} ${d.src.port} > ${d.dst.address}:${d.dst.port}`);
  };
}
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
  ...[true, false].map((seqConnects): LabCase => ({
    name: `symmetric-seq × port-restricted, --transport udp, the ${seqConnects ? 'symmetric-seq' : 'port-restricted'} peer connects: direct-udp by prediction`, source: 'connect-prediction',
    scenario: seqConnects ? { a: 'symmetric-seq', b: 'port-restricted', transport: 'udp' } : { a: 'port-restricted', b: 'symmetric-seq', transport: 'udp' },
    expect: (o) => {
      both('direct-udp', 'udp-prediction')(o);
      // The port-restricted side reached the other at a port of its NAT's counter.
      inCounter(seqConnects ? o.listener : o.connector);
    },
  })),
  {
    name: 'symmetric-seq × symmetric-seq, --transport udp: direct-udp by prediction on both sides', source: 'connect-prediction',
    scenario: { a: 'symmetric-seq', b: 'symmetric-seq', transport: 'udp' },
    expect: (o) => { both('direct-udp', 'udp-prediction')(o); inCounter(o.connector); inCounter(o.listener); },
  },
  ...(['port-restricted', 'symmetric-seq'] as const).map((other): LabCase => ({
    name: `symmetric-seq × ${other}, --transport tcp: direct-tcp by prediction`, source: 'connect-prediction',
    scenario: { a: 'symmetric-seq', b: other, transport: 'tcp' },
    expect: (o) => { both('direct-tcp', 'tcp-prediction')(o); inCounter(o.listener); },
  })),
  {
    name: 'port-restricted behind a port-restricted carrier NAT × port-restricted: direct-udp', source: 'connect-udp',
    scenario: { a: { kind: 'port-restricted', carrier: 'port-restricted' }, b: 'port-restricted' }, expect: both('direct-udp', /^udp-/),
  },
  {
    name: '10% loss on one NAT\'s WAN link: direct-udp', source: 'connect-udp',
    scenario: { a: { kind: 'port-restricted', lossPercent: 10 }, b: 'full-cone' }, expect: both('direct-udp', /^udp-/),
  },
  ...[false, true].map((hairpin): LabCase => ({
    name: `two clients behind the same port-restricted NAT (hairpin ${hairpin ? 'on' : 'off'}) connect directly, over their private endpoints`, source: 'connect-udp',
    scenario: { a: { kind: 'port-restricted', hairpin, clients: 2 }, b: 'full-cone', between: ['a1', 'a2'] },
    expect: (o) => { both('direct-udp', /^udp-/)(o); assert.match('remote' in o.connector ? o.connector.remote : '', /^10\./, JSON.stringify(o)); },
  })),
  ...[true, false].flatMap((openConnects) => (['auto', 'udp', 'tcp'] as const).map((transport): LabCase => {
    const starts: string[] = [];
    return {
      name: `open × port-restricted, --transport ${transport}, the ${openConnects ? 'open' : 'NATed'} peer connects: ${transport === 'tcp' ? 'tcp' : 'udp'}-reversal, and the open peer starts no flow toward the other`,
      source: 'connect-reversal',
      scenario: { a: 'open', b: 'port-restricted', transport, between: openConnects ? ['a1', 'b1'] : ['b1', 'a1'], trace: flowsStartedBy('a1', starts) },
      expect: (o) => {
        both(transport === 'tcp' ? 'direct-tcp' : 'direct-udp', transport === 'tcp' ? 'tcp-reversal' : 'udp-reversal')(o);
        assert.deepEqual(starts, [], 'the open peer sent a packet that started a flow (a check or SYN of its own)');
      },
    };
  })),
  (() => {
    const starts: string[] = [];
    return {
      name: 'the "starts a flow" count is live: the NATed peer, which dials, is seen starting flows', source: 'connect-reversal',
      scenario: { a: 'open', b: 'port-restricted', trace: flowsStartedBy('b1', starts) },
      expect: () => { assert.ok(starts.some((x) => x.startsWith('udp')) && starts.some((x) => x.startsWith('tcp')), JSON.stringify(starts)); },
    };
  })(),
  (() => {
    const starts: string[] = [];
    return {
      name: 'full-cone × port-restricted, default (auto): udp-reversal, and the full-cone peer starts no UDP flow', source: 'connect-reversal',
      scenario: { a: 'full-cone', b: 'port-restricted', between: ['b1', 'a1'] as const, trace: flowsStartedBy('a1', starts, 'udp') },
      expect: (o: ConnectOutcome) => { both('direct-udp', 'udp-reversal')(o); assert.deepEqual(starts, []); },
    };
  })(),
  {
    name: '--transport tcp, port-restricted × port-restricted, both punching from L after their connection to the server has closed: direct-tcp', source: 'connect-tcp-short-mapping (its last step)',
    scenario: { a: 'port-restricted', b: 'port-restricted', transport: 'tcp', closeKept: true }, expect: both('direct-tcp', 'tcp-simultaneous-open'),
  },
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
