import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from '../support/wait.js';
import type { RemoteInfo, Socket } from 'node:dgram';
import { VirtualClock } from '../../src/sim/virtual-clock.js';
import { Network, type Host } from '../../src/sim/network.js';
import { createSimSocket } from '../../src/sim/socket.js';
import { natPreset } from '../../src/sim/nat-presets.js';
import { createSimLab } from '../../src/sim/topology.js';

/** Packets through links, routers and NATs, and the dgram-shaped sockets at the ends. */

async function bound(host: Host, port = 0, address?: string): Promise<Socket> {
  const socket = createSimSocket(host);
  socket.bind(port, address);
  await once(socket, 'listening');
  return socket;
}

function collect(socket: Socket): { data: string; from: string; at: number }[] & { clock?: VirtualClock } {
  const got: { data: string; from: string; at: number }[] = [];
  const clock = (socket as unknown as { host: Host }).host.network.clock;
  socket.on('message', (data: Buffer, rinfo: RemoteInfo) => got.push({ data: data.toString(), from: `${rinfo.address}:${rinfo.port}`, at: clock.now() }));
  return got;
}

function twoHosts(link: { latencyMs?: number; jitterMs?: number; loss?: number } = {}, seed = 1): { clock: VirtualClock; network: Network; x: Host; y: Host } {
  const clock = new VirtualClock();
  const network = new Network({ clock, seed });
  const x = network.addHost({ name: 'x', addresses: ['198.51.100.1'], link });
  const y = network.addHost({ name: 'y', addresses: ['198.51.100.2'], link });
  return { clock, network, x, y };
}

test('a datagram takes the latency of both links it crosses, in virtual time', async () => {
  const { clock, x, y } = twoHosts({ latencyMs: 25 });
  const [sx, sy] = await clock.run(Promise.all([bound(x), bound(y, 9000)]));
  const got = collect(sy);
  sx.send(Buffer.from('hi'), 9000, '198.51.100.2');
  await clock.advance(1000);
  assert.deepEqual(got, [{ data: 'hi', from: `198.51.100.1:${sx.address().port}`, at: 50 }]);
});

test('loss drops about the share asked for, the same datagrams for the same seed', async () => {
  const run = async (seed: number): Promise<string[]> => {
    const { clock, x, y } = twoHosts({ loss: 0.1 }, seed);
    const [sx, sy] = await clock.run(Promise.all([bound(x), bound(y, 9000)]));
    const got = collect(sy);
    for (let i = 0; i < 1000; i++) sx.send(String(i), 9000, '198.51.100.2');
    await clock.advance(10);
    return got.map((g) => g.data);
  };
  const first = await run(1);
  // Two links at 10 % each: 81 % arrive.
  assert.ok(first.length > 760 && first.length < 860, `${first.length} of 1000 arrived`);
  assert.deepEqual(await run(1), first);
  assert.notDeepEqual(await run(2), first);
});

test('jitter reorders datagrams sent close together', async () => {
  const { clock, x, y } = twoHosts({ latencyMs: 10, jitterMs: 20 });
  const [sx, sy] = await clock.run(Promise.all([bound(x), bound(y, 9000)]));
  const got = collect(sy);
  for (let i = 0; i < 50; i++) sx.send(String(i), 9000, '198.51.100.2');
  await clock.advance(100);
  const order = got.map((g) => Number(g.data));
  assert.equal(order.length, 50);
  assert.notDeepEqual(order, [...order].sort((a, b) => a - b));
  for (const g of got) assert.ok(g.at >= 20 && g.at < 60, `arrived at ${g.at}`);
});

test('a private address from another LAN leads nowhere: the internet drops it', async () => {
  const lab = createSimLab({ a: { kind: 'full-cone' }, b: { kind: 'full-cone' } });
  const sa = lab.socketFactory('a1')();
  const sb = lab.socketFactory('b1')();
  sb.bind(9000);
  sa.bind(0);
  await lab.clock.run(Promise.all([once(sa, 'listening'), once(sb, 'listening')]));
  const got = collect(sb);
  sa.send('x', 9000, '10.0.2.2');
  await lab.clock.advance(100);
  assert.equal(got.length, 0);
  assert.equal(lab.network.stats['no-route'], 1);
});

test('hosts on one LAN reach each other directly, untranslated', async () => {
  const lab = createSimLab({ a: { kind: 'symmetric-random', clients: 2 } });
  const [s1, s2] = await lab.clock.run(Promise.all([bound(lab.hosts.a1!), bound(lab.hosts.a2!, 9000)]));
  const got = collect(s2);
  s1.send('x', 9000, '10.0.1.3');
  await lab.clock.advance(10);
  assert.equal(got[0]!.from, `10.0.1.2:${s1.address().port}`);
  assert.deepEqual(lab.routers.a!.nat!.mappings(lab.clock.now()), []);
});

test('behind a carrier NAT the server sees the carrier\'s address, and the answer finds its way back through both NATs', async () => {
  const lab = createSimLab({ a: { kind: 'port-restricted', carrier: 'symmetric-random' } });
  const [client, server] = await lab.clock.run(Promise.all([bound(lab.hosts.a1!), bound(lab.server, 3478, '198.51.100.10')]));
  const atServer = collect(server);
  const atClient = collect(client);
  server.on('message', (data: Buffer, rinfo: RemoteInfo) => server.send(data, rinfo.port, rinfo.address));
  client.send('ping', 3478, '198.51.100.10');
  await lab.clock.advance(10);
  assert.match(atServer[0]!.from, /^203\.0\.113\.100:\d+$/);
  assert.deepEqual(atClient.map((g) => g.data), ['ping']);
  assert.match(lab.routers.a!.nat!.mappings(lab.clock.now())[0]!.external.address, /^100\.64\.1\.2$/);
});

test('a router reboot forgets mappings: a port-preserving NAT comes back on the same port, a random-port EIM NAT on a new one', async () => {
  for (const [kind, samePort] of [['port-restricted', true], ['eim-random-port', false]] as const) {
    const lab = createSimLab({ a: { kind } });
    const [client, server] = await lab.clock.run(Promise.all([bound(lab.hosts.a1!), bound(lab.server, 3478, '198.51.100.10')]));
    const seen = collect(server);
    client.send('1', 3478, '198.51.100.10');
    await lab.clock.advance(10);
    lab.routers.a!.reboot();
    client.send('2', 3478, '198.51.100.10');
    await lab.clock.advance(10);
    assert.equal(seen[0]!.from === seen[1]!.from, samePort, `${kind}: ${seen[0]!.from} then ${seen[1]!.from}`);
  }
});

test('a sim socket behaves as node:dgram where natpunch can tell', async () => {
  const { clock, x } = twoHosts();
  const a = await clock.run(bound(x, 7000));
  // The same port twice: EADDRINUSE as an 'error' event.
  const b = createSimSocket(x);
  b.bind(7000);
  const [error] = await clock.run(once(b, 'error')) as [NodeJS.ErrnoException];
  assert.equal(error.code, 'EADDRINUSE');
  // send() on an unbound socket binds it to an ephemeral port first, and its callback comes later.
  const c = createSimSocket(x);
  let called = false;
  c.send('x', 7000, '198.51.100.1', (err) => { assert.equal(err, null); called = true; });
  assert.equal(called, false);
  const got = collect(a);
  await clock.advance(1);
  assert.equal(called, true);
  assert.ok(c.address().port >= 32768 && c.address().port <= 60999);
  assert.equal(got[0]!.from, `198.51.100.1:${c.address().port}`);
  // A closed socket refuses, as node:dgram does.
  await clock.run(new Promise<void>((resolve) => a.close(resolve)));
  assert.throws(() => a.send('x', 1, '198.51.100.2'), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
  assert.throws(() => createSimSocket(x, 'udp6'), { code: 'ERR_SIM' });
});

test('an open router forwards both ways without any filter', async () => {
  const clock = new VirtualClock();
  const network = new Network({ clock });
  const router = network.addRouter({ name: 'r', wanAddress: '203.0.113.5', nat: natPreset('open') });
  const inside = network.addHost({ name: 'in', parent: router, addresses: ['192.0.2.2'] });
  const outside = network.addHost({ name: 'out', addresses: ['198.51.100.9'] });
  const [si, so] = await clock.run(Promise.all([bound(inside, 5000), bound(outside, 6000)]));
  const got = collect(si);
  so.send('unsolicited', 5000, '192.0.2.2');
  await clock.advance(1);
  assert.deepEqual(got.map((g) => g.from), ['198.51.100.9:6000']);
});
