import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Nat, type NatBehaviour, type Endpoint } from '../../src/sim/nat.js';
import { natPreset } from '../../src/sim/nat-presets.js';
import { Prng } from '../../src/sim/prng.js';
import { NAT_KINDS, natTruth } from '../../src/lab/nat-kind.js';

/** The NAT model alone, behaviour by behaviour, in RFC 4787's words. */

const WAN = '203.0.113.10';
const client: Endpoint = { address: '10.0.1.2', port: 5000 };
const client2: Endpoint = { address: '10.0.1.3', port: 5000 };
const server: Endpoint = { address: '198.51.100.10', port: 3478 };
const serverOtherPort: Endpoint = { address: '198.51.100.10', port: 3479 };
const serverOtherIp: Endpoint = { address: '198.51.100.11', port: 3478 };

function nat(overrides: Partial<NatBehaviour> = {}, seed = 1): Nat {
  return new Nat({
    translate: true, mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', portAssignment: { kind: 'preserving' },
    hairpin: false, mappingTimeoutMs: 120_000, inboundRefresh: false, blockUdp: false, ...overrides,
  }, { externalAddress: WAN, prng: new Prng(seed) });
}

// RFC 4787 §4.1: which remote endpoints share a mapping.
const mappingCases = [
  { mapping: 'endpoint-independent', sameForOtherPort: true, sameForOtherIp: true },
  { mapping: 'address-dependent', sameForOtherPort: true, sameForOtherIp: false },
  { mapping: 'address-and-port-dependent', sameForOtherPort: false, sameForOtherIp: false },
] as const;
for (const c of mappingCases) {
  test(`${c.mapping} mapping reuses the mapping for another port: ${c.sameForOtherPort}, for another address: ${c.sameForOtherIp}`, () => {
    const n = nat({ mapping: c.mapping, portAssignment: { kind: 'random', min: 1024, max: 65535 } });
    const first = n.outbound(client, server, 0)!;
    assert.equal(first.address, WAN);
    assert.deepEqual(n.outbound(client, server, 1), first, 'the same remote always gets the same mapping');
    assert.equal(n.outbound(client, serverOtherPort, 2)!.port === first.port, c.sameForOtherPort);
    assert.equal(n.outbound(client, serverOtherIp, 3)!.port === first.port, c.sameForOtherIp);
  });
}

// RFC 4787 §5: who may send in through a mapping the client opened toward `server`.
const filteringCases = [
  { filtering: 'endpoint-independent', otherPort: true, otherIp: true },
  { filtering: 'address-dependent', otherPort: true, otherIp: false },
  { filtering: 'address-and-port-dependent', otherPort: false, otherIp: false },
] as const;
for (const c of filteringCases) {
  test(`${c.filtering} filtering admits the remote sent to, another port of it: ${c.otherPort}, another address: ${c.otherIp}`, () => {
    const n = nat({ filtering: c.filtering });
    const external = n.outbound(client, server, 0)!;
    assert.deepEqual(n.inbound(server, external, 1), client);
    assert.equal(n.inbound(serverOtherPort, external, 1) !== undefined, c.otherPort);
    assert.equal(n.inbound(serverOtherIp, external, 1) !== undefined, c.otherIp);
  });
}

test('nothing comes in where no mapping exists, whatever the filtering', () => {
  const n = nat({ filtering: 'endpoint-independent' });
  assert.equal(n.inbound(server, { address: WAN, port: 5000 }, 0), undefined);
});

test('a preserving NAT keeps the internal port, and gives a second client with the same port another one', () => {
  const n = nat();
  assert.equal(n.outbound(client, server, 0)!.port, 5000);
  const second = n.outbound(client2, server, 0)!;
  assert.notEqual(second.port, 5000);
  assert.deepEqual(n.inbound(server, second, 1), client2);
});

test('a sequential NAT counts base + k·delta for every new mapping, shared by all clients', () => {
  const n = nat({ mapping: 'address-and-port-dependent', portAssignment: { kind: 'sequential', base: 40000, delta: 2, count: 1000 } });
  const ports = [
    n.outbound(client, server, 0)!.port,
    n.outbound(client, serverOtherPort, 0)!.port,
    n.outbound(client2, server, 0)!.port,
    n.outbound(client, server, 0)!.port, // an existing mapping: no step
    n.outbound(client, serverOtherIp, 0)!.port,
  ];
  assert.deepEqual(ports, [40000, 40002, 40004, 40000, 40006]);
});

test('a NAT with every port held drops a new mapping\'s packet and counts it, and keeps the mappings it has (no port overloading, REQ-3)', () => {
  // A birthday spray from behind symmetric-seq makes one mapping per probe: up to 2,048 on 1,000 ports.
  const n = nat({ mapping: 'address-and-port-dependent', portAssignment: { kind: 'sequential', base: 40000, delta: 1, count: 4 } });
  const remotes = Array.from({ length: 5 }, (_, i): Endpoint => ({ address: '198.51.100.20', port: 1000 + i }));
  const ports = remotes.map((r) => n.outbound(client, r, 0)?.port);
  assert.deepEqual(ports, [40000, 40001, 40002, 40003, undefined]);
  assert.equal(n.portsExhausted, 1);
  assert.equal(n.outbound(client, remotes[0]!, 1)!.port, 40000, 'a live mapping still carries traffic');
  assert.equal(n.mappings(1).length, 4);
  // Once one expires, its port serves a new mapping.
  assert.equal(n.outbound(client, remotes[4]!, 120_001)?.port, 40000);
});

test('a random NAT draws its ports from the seed: the same seed, the same ports', () => {
  const draw = (seed: number): number[] => {
    const n = nat({ mapping: 'address-and-port-dependent', portAssignment: { kind: 'random', min: 1024, max: 65535 } }, seed);
    return [server, serverOtherPort, serverOtherIp].map((r) => n.outbound(client, r, 0)!.port);
  };
  assert.deepEqual(draw(3), draw(3));
  assert.notDeepEqual(draw(3), draw(4));
  for (const port of draw(5)) assert.ok(port >= 1024 && port <= 65535);
});

test('an idle mapping expires after the timeout, and outbound traffic refreshes it (RFC 4787 REQ-6)', () => {
  const n = nat({ mappingTimeoutMs: 1000, portAssignment: { kind: 'random', min: 1024, max: 65535 } });
  const external = n.outbound(client, server, 0)!;
  assert.deepEqual(n.outbound(client, server, 900), external, 'refreshed at 900');
  assert.deepEqual(n.inbound(server, external, 1800), client, 'alive at 1800: 900 + 1000 > 1800');
  assert.equal(n.inbound(server, external, 1900), undefined, 'expired at 1900');
  assert.notDeepEqual(n.outbound(client, server, 2000), external, 'a new mapping, on a new random port');
});

test('inbound traffic refreshes a mapping only when inboundRefresh is on', () => {
  for (const inboundRefresh of [false, true]) {
    const n = nat({ mappingTimeoutMs: 1000, inboundRefresh });
    const external = n.outbound(client, server, 0)!;
    assert.ok(n.inbound(server, external, 900));
    assert.equal(n.inbound(server, external, 1500) !== undefined, inboundRefresh);
  }
});

test('hairpinning delivers to the mapping\'s owner from the sender\'s external endpoint (RFC 4787 REQ-9a), or drops when off', () => {
  for (const hairpin of [true, false]) {
    const n = nat({ hairpin });
    const target = n.outbound(client, server, 0)!;
    const looped = n.hairpin(client2, target, 1);
    if (!hairpin) {
      assert.equal(looped, undefined);
      continue;
    }
    const senderMapping = n.outbound(client2, server, 2)!;
    assert.deepEqual(looped, { from: senderMapping, to: client });
  }
});

test('a reboot (flush) forgets every mapping: old external ports admit nothing', () => {
  const n = nat({ filtering: 'endpoint-independent' });
  const external = n.outbound(client, server, 0)!;
  n.flush();
  assert.equal(n.inbound(server, external, 1), undefined);
  assert.deepEqual(n.mappings(1), []);
});

test('a firewall that does not translate keeps endpoints as they are and still filters', () => {
  const n = nat({ translate: false, filtering: 'address-and-port-dependent' });
  const client192 = { address: '192.0.2.2', port: 5000 };
  assert.deepEqual(n.outbound(client192, server, 0), client192);
  assert.deepEqual(n.inbound(server, client192, 1), client192);
  assert.equal(n.inbound(serverOtherPort, client192, 1), undefined);
  assert.equal(n.ownsAddress('192.0.2.2'), false);
});

test('a UDP-blocking NAT passes nothing either way', () => {
  const n = nat({ blockUdp: true });
  assert.equal(n.outbound(client, server, 0), undefined);
  assert.equal(n.inbound(server, { address: WAN, port: 5000 }, 0), undefined);
});

test('the presets have the mapping and filtering natTruth gives each lab kind', () => {
  for (const kind of NAT_KINDS) {
    const preset = natPreset(kind);
    const truth = natTruth(kind);
    if (kind === 'open') {
      assert.equal(preset, undefined, 'open is no NAT at all');
      continue;
    }
    assert.equal(preset!.translate, truth.natted, kind);
    assert.equal(preset!.blockUdp, kind === 'udp-blocked', kind);
    if (truth.mapping !== null) assert.equal(preset!.mapping, truth.mapping, kind);
    if (truth.filtering !== null) assert.equal(preset!.filtering, truth.filtering, kind);
    const expected = { preserving: 'preserving', sequential: 'sequential', random: 'random' } as const;
    if (truth.portAllocation !== null) assert.equal(preset!.portAssignment.kind, expected[truth.portAllocation], kind);
    // Random ports from the range nat-ruleset.ts gives Linux (`1024-65535 fully-random`): birthday probing's odds.
    if (preset!.portAssignment.kind === 'random') assert.deepEqual(preset!.portAssignment, { kind: 'random', min: 1024, max: 65535 }, kind);
    assert.equal(preset!.mappingTimeoutMs, 120_000, kind);
  }
});
