import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NatpunchError } from '../../src/errors.js';
import { parseConntrackLine, parseConntrackList } from '../../src/lab/conntrack.js';
import { NAT_KINDS, natTruth, type NatKind, type NatTruth } from '../../src/lab/nat-kind.js';
import { counterRule, lossRuleset, natRuleset, SEQUENTIAL_PORT_COUNT } from '../../src/lab/nat-ruleset.js';
import { classifyAllocation } from '../../src/lab/observe.js';
import { planIpBatches, planLab, planNamespaces, type RouterPlan } from '../../src/lab/topology.js';

/** The lab's pure parts: ground truth, addressing, rulesets and parsers. No root needed. */

const isLabError = (pattern: RegExp) => (error: unknown): boolean =>
  NatpunchError.is(error) && error.code === 'ERR_LAB' && error.name === 'LabError' && pattern.test(error.message);

const EIM = 'endpoint-independent';
const ADF = 'address-dependent';
const APD = 'address-and-port-dependent';
const truthTable: [NatKind, NatTruth][] = [
  ['full-cone', { natted: true, mapping: EIM, filtering: EIM, rfc3489: 'full-cone', portAllocation: 'preserving' }],
  ['restricted-cone', { natted: true, mapping: EIM, filtering: ADF, rfc3489: 'restricted-cone', portAllocation: 'preserving' }],
  ['port-restricted', { natted: true, mapping: EIM, filtering: APD, rfc3489: 'port-restricted-cone', portAllocation: 'preserving' }],
  ['eim-random-port', { natted: true, mapping: EIM, filtering: APD, rfc3489: 'port-restricted-cone', portAllocation: 'random' }],
  ['symmetric-random', { natted: true, mapping: APD, filtering: APD, rfc3489: 'symmetric', portAllocation: 'random' }],
  ['symmetric-seq', { natted: true, mapping: APD, filtering: APD, rfc3489: 'symmetric', portAllocation: 'sequential' }],
  ['symmetric-firewall', { natted: false, mapping: EIM, filtering: APD, rfc3489: 'symmetric-udp-firewall', portAllocation: 'preserving' }],
  ['udp-blocked', { natted: true, mapping: null, filtering: null, rfc3489: 'udp-blocked', portAllocation: null }],
  ['open', { natted: false, mapping: EIM, filtering: EIM, rfc3489: 'open-internet', portAllocation: 'preserving' }],
];

test('natTruth gives each of the nine kinds its RFC 4787 / RFC 3489 behaviour', () => {
  assert.deepEqual([...NAT_KINDS].sort(), truthTable.map(([k]) => k).sort());
  for (const [kind, truth] of truthTable) assert.deepEqual(natTruth(kind), truth, kind);
});

test('natTruth returns a copy the caller may change, and rejects an unknown kind', () => {
  const truth = natTruth('open');
  truth.natted = true;
  assert.equal(natTruth('open').natted, false);
  assert.throws(() => natTruth('cone' as NatKind), isLabError(/unknown NAT kind "cone"/));
});

test('a NAT router gets a private LAN, its clients addresses in it, and no route from the internet', () => {
  const plan = planLab('t1', { kind: 'port-restricted', clients: 2 }, { kind: 'full-cone' });
  const a = plan.routers.find((r) => r.name === 'a')!;
  assert.equal(a.netns, 't1-a');
  assert.equal(a.wanAddress, '203.0.113.10');
  assert.equal(a.lanNetwork, '10.0.1.0/24');
  assert.deepEqual(plan.hosts.map((h) => [h.name, h.addresses[0], h.gateway]), [
    ['a1', '10.0.1.2', '10.0.1.1'],
    ['a2', '10.0.1.3', '10.0.1.1'],
    ['b1', '10.0.2.2', '10.0.2.1'],
  ]);
  assert.deepEqual(plan.server.addresses, ['198.51.100.10', '198.51.100.11']);
  assert.deepEqual(plan.inet.routes, []);
});

test('open and symmetric-firewall clients get routed public addresses', () => {
  const plan = planLab('t1', { kind: 'open' }, { kind: 'symmetric-firewall' });
  assert.deepEqual(plan.hosts.map((h) => h.addresses[0]), ['192.0.2.2', '192.0.2.66']);
  assert.deepEqual(plan.inet.routes, [
    { network: '192.0.2.0/26', via: '203.0.113.10' },
    { network: '192.0.2.64/26', via: '203.0.113.20' },
  ]);
});

test('a carrier NAT sits between the home router and the internet, in 100.64.0.0/10', () => {
  const plan = planLab('t1', { kind: 'full-cone', carrier: 'symmetric-seq' });
  assert.deepEqual(plan.routers.map((r) => r.name), ['carrier-a', 'a'], 'the carrier is configured first');
  const [carrier, home] = plan.routers as [RouterPlan, RouterPlan];
  assert.equal(carrier.kind, 'symmetric-seq');
  assert.equal(carrier.wanAddress, '203.0.113.100');
  assert.equal(carrier.lanNetwork, '100.64.1.0/24');
  assert.equal(home.wanAddress, '100.64.1.2');
  assert.equal(home.wanGateway, '100.64.1.1');
  assert.deepEqual(home.uplink, { netns: 't1-carrier-a', ifname: 'lan1' });
  assert.deepEqual(carrier.routes, [{ network: '10.0.1.0/24', via: '100.64.1.2' }]);
});

test('the outermost NATs reach each other through the core router, as across the internet', () => {
  const plan = planLab('t1', { kind: 'port-restricted', carrier: 'full-cone' }, { kind: 'restricted-cone' });
  const byName = new Map(plan.routers.map((r) => [r.name, r]));
  assert.deepEqual(byName.get('carrier-a')!.routes.filter((r) => r.network.endsWith('/32')), [{ network: '203.0.113.20/32', via: '203.0.113.1' }]);
  assert.deepEqual(byName.get('b')!.routes, [{ network: '203.0.113.100/32', via: '203.0.113.1' }]);
  // The home router behind the carrier is not on the core: its default route already leaves through the carrier.
  assert.deepEqual(byName.get('a')!.routes, []);
});

test('each namespace’s ip batch runs after the batch that creates its interfaces', () => {
  const plan = planLab('t1', { kind: 'port-restricted', clients: 2, carrier: 'full-cone' }, { kind: 'open' });
  const batches = planIpBatches(plan);
  assert.deepEqual(batches.map((b) => b.netns).sort(), planNamespaces(plan).sort());
  batches.forEach((batch, index) => {
    for (const line of batch.lines) {
      const moved = / netns (\S+)$/.exec(line)?.[1];
      if (moved === undefined) continue;
      const childIndex = batches.findIndex((b) => b.netns === moved);
      assert.ok(childIndex > index, `${moved} is configured after ${batch.netns} creates its link`);
    }
  });
});

test('bad prefixes and router options are LabErrors saying what was expected', () => {
  assert.throws(() => planLab('has-dash', { kind: 'open' }), isLabError(/prefix "has-dash" is not usable/));
  assert.throws(() => planLab('t1', { kind: 'open', clients: 3 as 1 }), isLabError(/a\.clients is 3, expected 1 or 2/));
  assert.throws(() => planLab('t1', { kind: 'open' }, { kind: 'open', lossPercent: -1 }), isLabError(/b\.lossPercent is -1/));
  assert.throws(() => planLab('t1', { kind: 'open', udpTimeoutSeconds: 1.5 }), isLabError(/udpTimeoutSeconds is 1\.5/));
  assert.throws(() => planLab('t1', { kind: 'open', tcpUnsolicited: 'reset' as 'rst' }), isLabError(/tcpUnsolicited is "reset"/));
  assert.throws(() => planLab('t1', { kind: 'open', carrier: 'cgn' as NatKind }), isLabError(/a\.carrier is "cgn"/));
});

function routerOf(kind: NatKind, options: Partial<Parameters<typeof planLab>[1]> = {}): RouterPlan {
  return planLab('t1', { kind, ...options }).routers.at(-1)!;
}

test('the ruleset admits inbound UDP by mapping for full cone, by address sent to for restricted cone, else not at all', () => {
  const full = natRuleset(routerOf('full-cone'));
  assert.match(full, /iifname "wan" meta l4proto udp dnat ip to meta l4proto \. th dport map @ext2int/);
  const restricted = natRuleset(routerOf('restricted-cone'));
  assert.match(restricted, /ip saddr \. meta l4proto \. th dport @sentto dnat/);
  for (const kind of ['port-restricted', 'eim-random-port', 'symmetric-random', 'symmetric-seq'] as const) {
    assert.doesNotMatch(natRuleset(routerOf(kind)), /iifname "wan"[^\n]*dnat/, kind);
  }
});

test('symmetric rulesets pick a port per flow: fully random, or from a counter mapped to consecutive ports', () => {
  assert.match(natRuleset(routerOf('symmetric-random')), /snat ip to 203\.0\.113\.10 fully-random/);
  const seq = natRuleset(routerOf('symmetric-seq'));
  const map = /numgen inc mod (\d+) map \{ ([^}]*) \}/.exec(seq);
  assert.ok(map, 'a numgen map');
  assert.equal(Number(map[1]), SEQUENTIAL_PORT_COUNT);
  const entries = map[2]!.split(', ').map((e) => e.split(' : ').map(Number));
  assert.equal(entries.length, SEQUENTIAL_PORT_COUNT);
  entries.forEach(([counter, port], i) => assert.deepEqual([counter, port! - entries[0]![1]!], [i, i]));
});

test('routers that do not translate have no NAT chains, and UDP-blocked drops UDP in forward', () => {
  for (const kind of ['open', 'symmetric-firewall'] as const) assert.doesNotMatch(natRuleset(routerOf(kind)), /snat|dnat/, kind);
  assert.match(natRuleset(routerOf('udp-blocked')), /chain forward \{\n[^\n]*\n\s+meta l4proto udp drop/);
});

test('hairpin, TCP RST and loss options change the ruleset as named', () => {
  const plain = natRuleset(routerOf('port-restricted'));
  const tuned = natRuleset(routerOf('port-restricted', { hairpin: true, tcpUnsolicited: 'rst', lossPercent: 30 }));
  assert.doesNotMatch(plain, /iifname "lan" ip daddr 203\.0\.113\.10 meta l4proto \{ tcp, udp \} dnat/);
  assert.match(tuned, /iifname "lan" ip daddr 203\.0\.113\.10 meta l4proto \{ tcp, udp \} dnat/);
  assert.match(plain, /meta l4proto tcp counter name "unsolicited" drop/);
  assert.match(tuned, /meta l4proto tcp counter name "unsolicited" reject with tcp reset/);
  assert.doesNotMatch(plain, /numgen random/);
  assert.match(tuned, /hook ingress device "wan"[\s\S]*meta protocol ip numgen random mod 10000 < 3000/);
  assert.equal(lossRuleset('a', 0), 'table netdev natlab_loss_a\ndelete table netdev natlab_loss_a\n');
});

test('counter rules accept one nft match and refuse anything that could end the statement', () => {
  assert.equal(
    counterRule('to-x', 'ip daddr 203.0.113.7 udp dport { 4000, 4001 }', 'out'),
    'add counter ip natlab to-x\nadd rule ip natlab count-out oifname "wan" ip daddr 203.0.113.7 udp dport { 4000, 4001 } counter name "to-x"\n',
  );
  assert.match(counterRule('in-x', 'udp sport 1', 'in'), /count-in iifname "wan" udp sport 1/);
  assert.throws(() => counterRule('x', 'udp dport 1; flush ruleset', 'out'), isLabError(/must be one nft match expression/));
  assert.throws(() => counterRule('x', 'udp dport 1\nflush ruleset', 'out'), isLabError(/must be one nft match expression/));
  assert.throws(() => counterRule('x y', 'udp dport 1', 'out'), isLabError(/name "x y" is not usable/));
});

test('conntrack lines parse into original and reply tuples, with state and flags', () => {
  const udp = parseConntrackLine('udp      17 29 src=10.0.1.2 dst=198.51.100.11 sport=5000 dport=4000 [UNREPLIED] src=198.51.100.11 dst=203.0.113.10 sport=4000 dport=5000 mark=0 use=1');
  assert.deepEqual(udp, {
    proto: 'udp', protoNumber: 17, timeout: 29, state: null,
    src: '10.0.1.2', dst: '198.51.100.11', sport: 5000, dport: 4000,
    reply: { src: '198.51.100.11', dst: '203.0.113.10', sport: 4000, dport: 5000 },
    unreplied: true, assured: false,
  });
  const tcp = parseConntrackLine('tcp      6 431999 ESTABLISHED src=10.0.1.2 dst=198.51.100.10 sport=40000 dport=4478 src=198.51.100.10 dst=203.0.113.10 sport=4478 dport=40000 [ASSURED] mark=0 use=1');
  assert.equal(tcp.state, 'ESTABLISHED');
  assert.equal(tcp.assured, true);
  assert.equal(tcp.reply.dst, '203.0.113.10');
  const icmp = parseConntrackLine('icmp     1 29 src=10.0.1.2 dst=198.51.100.10 type=8 code=0 id=1234 src=198.51.100.10 dst=203.0.113.10 type=0 code=0 id=1234 mark=0 use=1');
  assert.deepEqual([icmp.sport, icmp.dport, icmp.reply.dst], [null, null, '203.0.113.10']);
  assert.deepEqual(parseConntrackList(''), []);
  assert.throws(() => parseConntrackLine('garbage'), isLabError(/does not start with protocol/));
  assert.throws(() => parseConntrackLine('udp 17 29 src=10.0.1.2 dst=1.2.3.4 sport=99999 dport=1'), isLabError(/port "99999"/));
});

test('port allocation is preserving, sequential (one constant small step) or random', () => {
  const pairs = (mapped: number[], local = mapped): { local: number; mapped: string }[] => mapped.map((m, i) => ({ local: local[i]!, mapped: `203.0.113.10:${m}` }));
  assert.equal(classifyAllocation(pairs([40100, 51234, 33000])), 'preserving');
  assert.equal(classifyAllocation(pairs([40005, 40006, 40007, 40008], [1, 2, 3, 4])), 'sequential');
  assert.equal(classifyAllocation(pairs([40005, 40007, 40009], [1, 2, 3])), 'sequential');
  assert.equal(classifyAllocation(pairs([40005, 40006, 40008], [1, 2, 3])), 'random');
  assert.equal(classifyAllocation(pairs([12000, 61000, 33000], [1, 2, 3])), 'random');
});
