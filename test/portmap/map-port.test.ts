import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mapPort, type MapPortOptions } from '../../src/portmap/index.js';
import { PortMapError } from '../../src/errors.js';
import { PcpResultCode } from '../../src/portmap/pcp-message.js';
import { NatPmpResultCode } from '../../src/portmap/nat-pmp-message.js';
import { FakeIgd, FakePortMapServer } from './fake-gateway.js';

/**
 * mapPort against gateways on loopback that speak PCP, only NAT-PMP, only UPnP, or nothing,
 * built from the real encoders (fake-gateway.ts).
 */

const base = (server: FakePortMapServer | undefined, igd: FakeIgd | undefined, extra: Partial<MapPortOptions> = {}): MapPortOptions => ({
  protocol: 'udp',
  internalPort: 40000,
  lifetimeSeconds: 600,
  gateway: '127.0.0.1',
  gatewayPort: server?.port ?? 9, // discard: nothing listens, so port unreachable
  upnp: igd ? { ssdp: { address: '127.0.0.1', port: igd.ssdpPort }, gatewaySsdpPort: igd.ssdpPort, discoveryMs: 2000 } : { ssdp: { address: '127.0.0.1', port: 9 }, gatewaySsdpPort: 9, discoveryMs: 300 },
  timeoutMs: 5000,
  ...extra,
});

test('PCP: maps with a 96-bit nonce naming this host, ignores an answer with another nonce, renews with the same nonce and deletes with lifetime 0', async () => {
  const server = await FakePortMapServer.start({ speaks: 'pcp', wrongNonceFirst: true });
  try {
    const mapping = await mapPort(base(server, undefined, { methods: ['pcp'] }));
    assert.deepEqual(mapping.info(), { method: 'pcp', protocol: 'udp', internalPort: 40000, gateway: '127.0.0.1', externalAddress: '203.0.113.7', externalPort: 40000, lifetimeSeconds: 600 });
    const [first] = server.pcp;
    assert.equal(first!.clientAddress, '127.0.0.1');
    assert.equal(first!.map.nonce.length, 12);
    assert.equal(first!.map.externalPort, 40000, 'suggests the internal port');
    await mapping.renew();
    await mapping.close();
    assert.deepEqual(server.pcp.map((r) => r.lifetime), [600, 600, 0]);
    for (const r of server.pcp) assert.deepEqual(r.map.nonce, first!.map.nonce);
    assert.equal(server.natPmp.length, 0);
  } finally {
    server.close();
  }
});

test('PCP answered with NAT-PMP\'s Unsupported Version: falls back to NAT-PMP (external address, then map), deletes with lifetime 0 and port 0', async () => {
  const server = await FakePortMapServer.start({ speaks: 'nat-pmp' });
  try {
    const mapping = await mapPort(base(server, undefined, { protocol: 'tcp', methods: ['pcp', 'nat-pmp'] }));
    assert.equal(mapping.method, 'nat-pmp');
    assert.equal(mapping.externalAddress, '203.0.113.7');
    assert.equal(mapping.externalPort, 40000);
    await mapping.close();
    assert.equal(server.pcp.length, 1);
    assert.deepEqual(server.natPmp, [
      { opcode: 0 },
      { opcode: 2, internalPort: 40000, suggestedExternalPort: 40000, lifetime: 600 },
      { opcode: 2, internalPort: 40000, suggestedExternalPort: 0, lifetime: 0 },
    ]);
  } finally {
    server.close();
  }
});

test('forced to PCP alone, a NAT-PMP-only gateway is reported as unsupported', async () => {
  const server = await FakePortMapServer.start({ speaks: 'nat-pmp' });
  try {
    await assert.rejects(mapPort(base(server, undefined, { methods: ['pcp'] })), (error: unknown) => {
      assert.ok(error instanceof PortMapError);
      assert.equal(error.code, 'ERR_PORTMAP');
      assert.equal(error.reason, 'unsupported');
      assert.equal(error.status, PcpResultCode.UnsuppVersion);
      assert.match(error.message, /speaks NAT-PMP, not PCP/);
      return true;
    });
  } finally {
    server.close();
  }
});

test('a gateway that refuses says so, with its result code and what to do', async () => {
  const server = await FakePortMapServer.start({ speaks: 'pcp', resultCode: PcpResultCode.NotAuthorized });
  try {
    await assert.rejects(mapPort(base(server, undefined, { methods: ['pcp'] })), (error: unknown) => {
      assert.ok(error instanceof PortMapError);
      assert.equal(error.reason, 'refused');
      assert.equal(error.status, PcpResultCode.NotAuthorized);
      assert.match(error.message, /NOT_AUTHORIZED.*turned off on the router/);
      return true;
    });
    server.options = { speaks: 'nat-pmp', resultCode: NatPmpResultCode.OutOfResources };
    await assert.rejects(mapPort(base(server, undefined)), (error: unknown) => {
      assert.ok(error instanceof PortMapError);
      assert.equal(error.reason, 'refused');
      assert.equal(error.status, NatPmpResultCode.OutOfResources);
      assert.equal(error.attempts.length, 2, 'NAT-PMP refused, and UPnP found no device');
      assert.match(error.message, /Out of resources/);
      return true;
    });
  } finally {
    server.close();
  }
});

test('double NAT: a private external address is reported as double-nat and the mapping is deleted', async () => {
  const server = await FakePortMapServer.start({ speaks: 'pcp', externalAddress: '100.64.3.4' });
  try {
    await assert.rejects(mapPort(base(server, undefined, { methods: ['pcp'] })), (error: unknown) => {
      assert.ok(error instanceof PortMapError);
      assert.equal(error.reason, 'double-nat');
      assert.equal(error.externalAddress, '100.64.3.4');
      assert.match(error.message, /100\.64\.3\.4.*double NAT/);
      return true;
    });
    assert.deepEqual(server.pcp.map((r) => r.lifetime), [600, 0], 'deleted right after');
  } finally {
    server.close();
  }
});

test('nothing on port 5351: UPnP-IGD maps the port (SSDP, description, AddPortMapping with this host as client), renews and deletes it', async () => {
  const igd = await FakeIgd.start();
  try {
    const mapping = await mapPort(base(undefined, igd, { upnpHeadStartMs: 10_000 }));
    assert.deepEqual(mapping.info(), { method: 'upnp-igd', protocol: 'udp', internalPort: 40000, gateway: '127.0.0.1', externalAddress: '203.0.113.9', externalPort: 40000, lifetimeSeconds: 600 });
    assert.deepEqual([...igd.mappings], [['UDP 40000', { internalPort: 40000, lease: 600, client: '127.0.0.1' }]]);
    await mapping.renew();
    await mapping.close();
    assert.deepEqual(igd.actions.map((a) => a.action), ['AddPortMapping', 'GetExternalIPAddress', 'AddPortMapping', 'GetExternalIPAddress', 'DeletePortMapping']);
    assert.equal(igd.mappings.size, 0);
  } finally {
    await igd.close();
  }
});

test('UPnP: a router that takes only permanent leases gets lease 0; a taken external port moves to another', async () => {
  const igd = await FakeIgd.start({ addErrors: [725, 718] });
  try {
    const mapping = await mapPort(base(undefined, igd, { methods: ['upnp-igd'] }));
    const [entry] = [...igd.mappings];
    assert.ok(entry);
    const [key, value] = entry;
    assert.equal(value.lease, 0);
    assert.notEqual(mapping.externalPort, 40000);
    assert.equal(key, `UDP ${mapping.externalPort}`);
    await mapping.close();
    assert.equal(igd.mappings.size, 0);
  } finally {
    await igd.close();
  }
});

test('a silent gateway: PCP retransmits (RFC 6887 §8.1.1) until the budget ends, then timeout, saying what was tried', async () => {
  const server = await FakePortMapServer.start({ speaks: 'silent' });
  try {
    const started = performance.now();
    await assert.rejects(mapPort(base(server, undefined, { methods: ['pcp'], pcpIrtMs: 100, timeoutMs: 800 })), (error: unknown) => {
      assert.ok(error instanceof PortMapError);
      assert.equal(error.reason, 'timeout');
      assert.match(error.message, /pcp got no answer within the 800 ms budget/);
      assert.match(error.message, /turn on UPnP, NAT-PMP or PCP/);
      return true;
    });
    assert.ok(performance.now() - started < 5000);
    assert.ok(server.datagrams >= 3, `${server.datagrams} PCP requests in 800 ms with IRT 100 ms: expected the first and at least two retransmissions`);
  } finally {
    server.close();
  }
});

test('no default route: no-gateway, and the message says to pass the gateway', async () => {
  const header = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n';
  await assert.rejects(mapPort({ protocol: 'udp', internalPort: 1234, readFile: async () => header }), (error: unknown) => {
    assert.ok(error instanceof PortMapError);
    assert.equal(error.reason, 'no-gateway');
    assert.match(error.message, /no IPv4 default route.*pass `gateway`/);
    return true;
  });
});

test('an aborted signal rejects with ERR_ABORTED, not a port-mapping failure', async () => {
  const server = await FakePortMapServer.start({ speaks: 'silent' });
  try {
    const controller = new AbortController();
    const pending = mapPort(base(server, undefined, { methods: ['pcp'], signal: controller.signal }));
    await server.requests(1);
    controller.abort();
    await assert.rejects(pending, { code: 'ERR_ABORTED' });
  } finally {
    server.close();
  }
});
