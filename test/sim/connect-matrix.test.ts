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
 * Birthday probing (src/punch/birthday.ts, src/peer/birthday-punch.ts, `birthdaySide` in
 * establish.ts): only symmetric-random signs natMapping 'random-per-destination' (port-predictor.ts
 * `randomPerDestination`: random ports that also change with the destination, RFC 5780 §4.3;
 * symmetric-seq's per-destination ports are counted, 'sequential', not random; eim-random-port's
 * change with nothing). When exactly one side signs it, and the other signed a public address
 * to aim at (its srflx, or an un-NATed host's public host candidate), the ordinary checks go alone
 * for BIRTHDAY_AFTER_MS (500 ms); if they have not succeeded, the hard side opens 256 sockets
 * toward the other's public endpoint and the other sprays up to 2,048 checks at random ports of
 * the hard side's address. It works where that endpoint is the other side's one mapping for
 * every destination, filtered per port it sent to: port-restricted and eim-random-port (lab:
 * connect-birthday, direct-udp, udp-birthday on both sides, in at least 19 of 20 runs; lab-matrix
 * for port-restricted) and symmetric-firewall, whose public host candidate birthdaySide aims at
 * (derived from the code: it filters like a port-restricted NAT and its port never changes; the
 * lab verdict is being taken). Not with symmetric-seq (each probe leaves from a new counted port,
 * and the hard side's sockets aim at the one its srflx had: filtered), udp-blocked, or itself
 * (both random: no probing). Against a restricted cone, full cone or open host the ordinary checks
 * succeed first (lab: connect-birthday: restricted-cone × symmetric-random is udp-hole-punch on
 * both sides) and no probe is spent.
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
 * 1 s grace for UDP; the relay only when neither is ready by then; a connection that started on
 * the relay moves to a direct path that completes later, as the lab matrix reports the path a
 * pair ended on: birthday probing often takes longer than the relay and its grace):
 *  1. direct-udp whenever UDP connects: not with UDP blocked (facts), not with
 *     symmetric-random unless the other side is a full cone, restricted cone or open host
 *     (facts: full/restricted cone × symmetric works; RFC 4787 §4.1/§5 for the rest, as
 *     test/sim/punch-matrix derives it), or birthday probing reaches it (above: port-restricted,
 *     eim-random-port, symmetric-firewall; the facts' "port-restricted × symmetric random fails"
 *     is plain punching's verdict), and everywhere else (facts: every cone × cone pair; lab: connect-udp's easy
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
 * The lab's own matrix agrees on the path of every pair it has a verdict for: `natpunch lab
 * matrix` (test/lab/lab-matrix.test.ts: port-restricted × symmetric-random direct-udp by
 * udp-birthday, possibly after starting on the relay; symmetric-seq × symmetric-random and
 * symmetric-random × itself through the relay; symmetric-seq × symmetric-seq either direct path
 * by prediction). The README's full run (2026-12-04: 39 direct, the relay for symmetric-random
 * against six kinds) predates birthday probing; by the rules above, 42 pairs are direct now and
 * the relay is left for symmetric-random against itself, symmetric-seq and udp-blocked.
 *
 * Each side's technique is establish.ts's naming rule applied to the pair it ends on:
 *  - UDP by birthday probing: udp-birthday on both sides (the easy side's pair is at a port its
 *    spray probed, the hard side's is on the socket a probe reached).
 *  - Other UDP: the side that only answers (reachable, facing an unreachable one) has no candidates
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

/** The pair connects over UDP only by birthday probing: symmetric-random against one mapping per host, filtered per port. */
function byBirthday(x: NatKind, y: NatKind): boolean {
  const other = x === 'symmetric-random' ? y : y === 'symmetric-random' ? x : undefined;
  return other === 'port-restricted' || other === 'eim-random-port' || other === 'symmetric-firewall';
}

function udpConnects(x: NatKind, y: NatKind): boolean {
  if (x === 'udp-blocked' || y === 'udp-blocked') return false;
  if (byBirthday(x, y)) return true;
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
  if (byBirthday(self, other)) return 'udp-birthday';
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
  if (is('port-restricted', 'symmetric-random')) return 'lab: connect-birthday, lab-matrix';
  if (is('eim-random-port', 'symmetric-random')) return 'lab: connect-birthday';
  if (is('symmetric-firewall', 'symmetric-random')) return 'code: birthdaySide aims at the firewall\'s public host candidate (lab verdict pending)';
  const easy = new Set<NatKind>(['full-cone', 'restricted-cone', 'port-restricted', 'eim-random-port', 'symmetric-firewall', 'open']);
  if (is('restricted-cone', 'symmetric-random')) return 'lab: connect-birthday (plain punching, no probe)';
  if ((easy.has(x) && easy.has(y)) || is('full-cone', 'symmetric-random')) return 'lab: connect-udp (path only)';
  if (is('symmetric-seq', 'port-restricted')) return 'lab: connect-prediction (--transport udp and tcp), lab-matrix';
  if (is('symmetric-seq', 'symmetric-seq')) return 'lab: lab-matrix (a direct path by prediction, either one); counting: the TCP punch uses up the UDP window';
  if (is('symmetric-seq', 'symmetric-random')) return 'lab: lab-matrix';
  // The README's full `natpunch lab matrix` run (before birthday probing): the relay for symmetric-random × udp-blocked.
  if (is('udp-blocked', 'symmetric-random')) return 'lab: lab-matrix full run (README)';
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

/**
 * Each side ended on `want`'s path with its technique. Only birthday probing, which can outlast
 * the relay's head start and the race's grace, may start on the relay and move (the lab matrix
 * allows the same for port-restricted × symmetric-random); its direct path comes within the
 * spray's ~8.7 s. A pair that stays on the relay never had a direct path.
 */
function check(outcome: ConnectOutcome, want: { path: PathKind; techniques: [string | RegExp, string | RegExp] }, label: string): void {
  const sides = [outcome.connector, outcome.listener];
  for (const [i, side] of sides.entries()) {
    assert.ok(!('error' in side), `${label}: ${JSON.stringify(outcome)}`);
    assert.equal(side.path, want.path, `${label}: ${JSON.stringify(outcome)}`);
    const technique = want.techniques[i]!;
    if (typeof technique === 'string') assert.equal(side.technique, technique, `${label}, ${i === 0 ? 'connector' : 'listener'}: ${JSON.stringify(outcome)}`);
    else assert.match(side.technique, technique, `${label}: ${JSON.stringify(outcome)}`);
    if (side.startPath !== undefined) {
      assert.ok(side.startPath === 'relay' && side.technique === 'udp-birthday', `${label}: only birthday probing starts on the relay and moves: ${JSON.stringify(outcome)}`);
    }
    if (side.path === 'relay') assert.equal(side.directMs, undefined, `${label}: ${JSON.stringify(outcome)}`);
    else assert.ok(side.directMs !== undefined && side.directMs >= side.ms && side.directMs < 10_000, `${label}: time to direct ${side.directMs}`);
  }
  assert.ok(outcome.timeToPathMs !== null && outcome.timeToPathMs < 10_000, `${label}: time to path ${outcome.timeToPathMs}`);
}

const pairs: [NatKind, NatKind][] = [];
for (let i = 0; i < NAT_KINDS.length; i++) for (let j = i; j < NAT_KINDS.length; j++) pairs.push([NAT_KINDS[i]!, NAT_KINDS[j]!]);

test('the matrix covers all 45 unordered pairs of the nine lab kinds', () => {
  assert.equal(pairs.length, 45);
});

test('the derived expectations agree with the lab (lab-matrix, connect-birthday): 42 pairs direct, three of them by birthday probing, the relay for symmetric-random against itself, symmetric-seq and udp-blocked', () => {
  const against = ([x, y]: [NatKind, NatKind]): NatKind => (x === 'symmetric-random' ? y : x);
  const relay = pairs.filter(([x, y]) => expected(x, y).path === 'relay').map(against).sort();
  assert.deepEqual(relay, ['symmetric-random', 'symmetric-seq', 'udp-blocked']);
  assert.equal(pairs.length - relay.length, 42);
  // The three the README's full run (2026-12-04, before birthday probing) sent through the relay.
  const birthday = pairs.filter(([x, y]) => expected(x, y).techniques[0] === 'udp-birthday').map(against).sort();
  assert.deepEqual(birthday, ['eim-random-port', 'port-restricted', 'symmetric-firewall']);
  assert.ok(pairs.filter(([x, y]) => byBirthday(x, y)).every(([x, y]) => expected(x, y).path === 'direct-udp'));
  // lab: connect-birthday — against a restricted cone plain punching wins, and no probe is spent.
  assert.deepEqual(expected('symmetric-random', 'restricted-cone').techniques, ['udp-hole-punch', 'udp-hole-punch']);
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
      const moved = 'startPath' in outcome.connector && outcome.connector.startPath ? ` (started on the ${outcome.connector.startPath}; direct after ${outcome.connector.directMs} ms)` : '';
      rows.push(`${a} → ${b}: ${want.path} ${techniques.join(' / ')}, ${outcome.timeToPathMs} ms${moved}`);
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

/**
 * lab: connect-birthday, as the lab runs it: symmetric-random (a) × each easy kind (b), twenty
 * `--transport udp` connects with fresh seeds (fresh NAT ports, sockets and spray), the symmetric
 * side connecting in the even ones; direct by birthday probing in at least 19 of 20 (plain hole
 * punching against the restricted cone). The sim's odds are the lab's: 256 mappings among the
 * NAT's 64,512 ports, up to 2,048 probes.
 */
for (const easy of ['port-restricted', 'eim-random-port', 'restricted-cone'] as const) {
  const technique = easy === 'restricted-cone' ? 'udp-hole-punch' : 'udp-birthday';
  test(`symmetric-random × ${easy}, --transport udp: direct-udp by ${technique} on both sides in at least 19 of 20 runs [lab: connect-birthday]`, async (t) => {
    const outcomes: string[] = [];
    for (let run = 0; run < 20; run++) {
      const between = run % 2 === 0 ? ['a1', 'b1'] as const : ['b1', 'a1'] as const;
      // Toward anything but the server: the ports the easy side sends to, and the sockets the hard side sends from.
      const sprayedTo = new Set<number>();
      const sentFrom = new Set<number>();
      const server = new Set<string>(SERVER_ADDRESSES);
      const trace = (e: TraceEvent): void => {
        if (e.event !== 'send' || server.has(e.datagram.dst.address)) return;
        if (e.node === 'b1') sprayedTo.add(e.datagram.dst.port);
        if (e.node === 'a1') sentFrom.add(e.datagram.src.port);
      };
      const o = await runConnect({ a: 'symmetric-random', b: easy, transport: 'udp', between, rttMs: 40, seed: `connect-birthday/${easy}/${run}`, trace });
      if (easy === 'restricted-cone') {
        // "completes before birthday probing would start": no spray, no sockets beyond the punching
        // one. The restricted cone sends to a1's host and srflx candidates and to the mapping a1's
        // own checks came from (a peer-reflexive pair): three ports.
        assert.ok(sprayedTo.size <= 3 && sentFrom.size === 1, `probes spent against a restricted cone: to ${sprayedTo.size} ports, from ${sentFrom.size} sockets`);
      } else {
        assert.ok(sprayedTo.size > 3 && sentFrom.size > 1, `run ${run}: no probing seen (${sprayedTo.size} ports, ${sentFrom.size} sockets): the trace is dead`);
      }
      const side = (x: ConnectSide): string => ('error' in x ? `failed: ${x.error}` : `${x.path}/${x.technique}`);
      outcomes.push(`${side(o.connector)} ${side(o.listener)} ${o.timeToPathMs} ms`);
    }
    const direct = outcomes.filter((o) => o.startsWith(`direct-udp/${technique} direct-udp/${technique} `)).length;
    t.diagnostic(`${direct} of 20 direct by ${technique}:\n${outcomes.join('\n')}`);
    assert.ok(direct >= 19, `${direct} of 20 connected direct by ${technique}:\n${outcomes.join('\n')}`);
  });
}

test('a birthday connect is a function of its seed (the NAT\'s ports and the spray\'s from the sim\'s PRNG): the same seed, the same pair and time; another seed, another', async () => {
  const run = async (seed: string): Promise<string> => {
    const o = await runConnect({ a: 'port-restricted', b: 'symmetric-random', transport: 'udp', rttMs: 40, seed });
    return JSON.stringify([o.connector, o.listener]);
  };
  const first = await run('birthday-seed');
  assert.match(first, /udp-birthday/);
  assert.equal(await run('birthday-seed'), first);
  assert.notEqual(await run('birthday-seed-2'), first);
});

// The wall time is printed, not asserted: speed belongs to benchmarks, and a busy machine is slow.
test('the matrix connected every pair, each way, and says how long it took', () => {
  const wallMs = performance.now() - started;
  console.log(`# connect matrix: ${rows.length} connects in ${Math.round(wallMs)} ms\n# ${rows.join('\n# ')}`);
  const connects = pairs.reduce((n, [x, y]) => n + (x === y ? 1 : 2), 0);
  assert.equal(rows.length, connects, 'one row per connect that met its expectation');
});
