import { test } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { once } from 'node:events';
import { createSimLab, type SimLab, type SimRouterOptions } from '../../src/sim/topology.js';
import type { NatKind } from '../../src/lab/nat-kind.js';
import { simTtlPriming } from '../../src/sim/tcp-ttl.js';

/**
 * TCP in the sim: a host's stack (RFC 9293 handshake, simultaneous open, RST for a closed
 * port, SO_REUSEADDR port sharing) and each NAT's conntrack (src/lab/nat-ruleset.ts: only flows
 * an inside host started let segments in, whatever the UDP filtering; unsolicited segments
 * dropped or, with tcpUnsolicited 'rst', refused).
 */

const SERVER = '198.51.100.10';

function lab(a: NatKind | SimRouterOptions, b: NatKind | SimRouterOptions = 'port-restricted'): SimLab {
  const side = (x: NatKind | SimRouterOptions): SimRouterOptions => ({ ...(typeof x === 'string' ? { kind: x } : x), wan: { latencyMs: 10 } });
  return createSimLab({ a: side(a), b: side(b), seed: 'tcp' });
}

/** A listener on `host`: resolves its sockets as they connect. */
async function listen(l: SimLab, host: string, port: number): Promise<{ server: net.Server; accepted: net.Socket[] }> {
  const accepted: net.Socket[] = [];
  const server = l.tcpNet(host).createServer({ allowHalfOpen: true }, (socket) => accepted.push(socket));
  server.listen(port, '0.0.0.0');
  await l.clock.run(once(server, 'listening'));
  return { server, accepted };
}

/** connect(), settled: the socket, or the error's code. */
async function connect(l: SimLab, host: string, options: net.TcpNetConnectOpts): Promise<{ socket: net.Socket; error?: string }> {
  const socket = l.tcpNet(host).connect(options);
  const outcome = new Promise<string | undefined>((resolve) => {
    socket.once('connect', () => resolve(undefined));
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code));
  });
  const error = await l.clock.run(outcome);
  return error === undefined ? { socket } : { socket, error };
}

function read(l: SimLab, socket: net.Socket, bytes: number): Promise<string> {
  return l.clock.run(new Promise((resolve) => {
    let got = '';
    socket.on('data', (chunk: Buffer) => {
      got += chunk.toString();
      if (got.length >= bytes) resolve(got);
    });
  }));
}

test('a client behind a NAT connects to the server: it sees the NAT\'s public endpoint, and bytes flow both ways', async () => {
  const l = lab('port-restricted');
  const { accepted } = await listen(l, 'server', 3478);
  const { socket, error } = await connect(l, 'a1', { host: SERVER, port: 3478, localPort: 40123 });
  assert.equal(error, undefined);
  await l.clock.advance(100);
  const [far] = accepted;
  assert.equal(`${far!.remoteAddress}:${far!.remotePort}`, '203.0.113.10:40123', 'port-preserving');
  socket.write('ping');
  assert.equal(await read(l, far!, 4), 'ping');
  far!.write('pong');
  assert.equal(await read(l, socket, 4), 'pong');
  socket.end();
  await l.clock.run(once(far!, 'end'));
});

test('a SYN to a port nobody listens on is answered with RST: ECONNREFUSED', async () => {
  const l = lab('open');
  const { error } = await connect(l, 'b1', { host: l.hosts.a1!.addresses[0]!, port: 5000 });
  assert.equal(error, 'ECONNREFUSED');
});

for (const kind of ['full-cone', 'restricted-cone', 'port-restricted', 'symmetric-firewall'] as const) {
  test(`${kind}: an unsolicited SYN is dropped (the lab's cones admit strangers over UDP only): ETIMEDOUT after the SYN retries`, async () => {
    const l = lab(kind);
    // a1 listens on 40000 (as a reversal listener does); nothing from inside opened a flow to b1.
    await listen(l, 'a1', 40000);
    await listen(l, 'server', 3478);
    assert.equal((await connect(l, 'a1', { host: SERVER, port: 3478, localPort: 40001 })).error, undefined);
    const target = kind === 'symmetric-firewall' ? l.hosts.a1!.addresses[0]! : '203.0.113.10';
    const started = l.clock.now();
    const { error } = await connect(l, 'b1', { host: target, port: 40000 });
    assert.equal(error, 'ETIMEDOUT');
    // Linux: tcp_syn_retries 6, RTO 1 s doubling: 1+2+…+64 = 127 s.
    assert.ok(Math.abs(l.clock.now() - started - 127_000) < 100, `gave up after ${l.clock.now() - started} ms`);
  });
}

test('with tcpUnsolicited rst the NAT refuses an unsolicited SYN at once: ECONNREFUSED', async () => {
  const l = lab({ kind: 'port-restricted', tcpUnsolicited: 'rst' });
  const started = l.clock.now();
  const { error } = await connect(l, 'b1', { host: '203.0.113.10', port: 40000 });
  assert.equal(error, 'ECONNREFUSED');
  assert.ok(l.clock.now() - started < 100);
});

/** Both clients keep a connection to the server from L, then connect from L to the other's mapping. */
async function punch(l: SimLab, options: { stagger?: number } = {}): Promise<Array<string | undefined>> {
  await listen(l, 'server', 3478);
  const kept = await Promise.all(['a1', 'b1'].map((h) => connect(l, h, { host: SERVER, port: 3478, localPort: 41000 })));
  assert.deepEqual(kept.map((k) => k.error), [undefined, undefined]);
  const settled = (s: net.Socket): Promise<string | undefined> => new Promise((resolve) => {
    s.once('connect', () => resolve(undefined));
    s.once('error', (error: NodeJS.ErrnoException) => resolve(error.code));
  });
  const a = settled(l.tcpNet('a1').connect({ host: '203.0.113.20', port: 41000, localPort: 41000 }));
  if (options.stagger) await l.clock.advance(options.stagger);
  const b = settled(l.tcpNet('b1').connect({ host: '203.0.113.10', port: 41000, localPort: 41000 }));
  return l.clock.run(Promise.all([a, b]));
}

test('simultaneous open through two port-restricted NATs: the SYNs cross, both connects succeed (RFC 9293 figure 8)', async () => {
  const l = lab('port-restricted');
  assert.deepEqual(await punch(l), [undefined, undefined]);
  const flows = l.routers.a!.tcp!.flows(l.clock.now()).filter((f) => f.remote.address === '203.0.113.20');
  assert.deepEqual(flows.map((f) => f.external.port), [41000], 'the punching connect reuses the kept connection\'s mapping');
});

test('an early SYN dropped by the far NAT is retransmitted after 1 s and meets the other SYN', async () => {
  const l = lab('port-restricted');
  const started = l.clock.now();
  assert.deepEqual(await punch(l, { stagger: 300 }), [undefined, undefined]);
  assert.ok(l.clock.now() - started < 1_500);
});

test('an early SYN refused by an RST-sending NAT fails the connect (the RST closes the own flow)', async () => {
  const l = lab('port-restricted', { kind: 'port-restricted', tcpUnsolicited: 'rst' });
  const [a, b] = await punch(l, { stagger: 300 });
  assert.equal(a, 'ECONNREFUSED');
  // b's SYN then finds a's flow closed: refused or dropped, never connected.
  assert.notEqual(b, undefined);
});

test('symmetric NAT: the connect from L gets a new external port, so the other side\'s SYN to the signed one is dropped', async () => {
  const l = lab('symmetric-random');
  await listen(l, 'server', 3478);
  await connect(l, 'a1', { host: SERVER, port: 3478, localPort: 41000 });
  const flows = (): number[] => l.routers.a!.tcp!.flows(l.clock.now()).map((f) => f.external.port);
  const toPeer = l.tcpNet('a1').connect({ host: '203.0.113.20', port: 41000, localPort: 41000 });
  toPeer.on('error', () => undefined);
  await l.clock.advance(50);
  const [first, second] = flows();
  assert.notEqual(first, second);
  toPeer.destroy();
});

test('SO_REUSEADDR as libuv sets it: connects share L, a listener on L does not', async () => {
  const l = lab('port-restricted');
  await listen(l, 'server', 3478);
  await listen(l, 'server', 3479);
  assert.equal((await connect(l, 'a1', { host: SERVER, port: 3478, localPort: 42000 })).error, undefined);
  assert.equal((await connect(l, 'a1', { host: SERVER, port: 3479, localPort: 42000 })).error, undefined);
  assert.equal((await connect(l, 'a1', { host: SERVER, port: 3479, localPort: 42000 })).error, 'EADDRNOTAVAIL', 'the same 4-tuple twice');
  const server = l.tcpNet('a1').createServer({});
  server.listen(42000);
  const [error] = await l.clock.run(once(server, 'error')) as [NodeJS.ErrnoException];
  assert.equal(error.code, 'EADDRINUSE');
  await listen(l, 'a1', 43000);
  assert.equal((await connect(l, 'a1', { host: SERVER, port: 3478, localPort: 43000 })).error, 'EADDRINUSE');
});

test('a SYN with a low TTL opens the own NAT\'s flow and dies in the core, before the far NAT', async () => {
  const l = lab('port-restricted', { kind: 'port-restricted', tcpUnsolicited: 'rst' });
  const socket = l.tcpNet('a1').connect({ host: '203.0.113.20', port: 41000, localPort: 41000, firstSynTtl: 2 } as net.TcpNetConnectOpts);
  socket.on('error', () => undefined);
  await l.clock.advance(500);
  assert.equal(l.network.stats['ttl-expired'], 1);
  assert.deepEqual(l.routers.a!.tcp!.flows(l.clock.now()).map((f) => f.state), ['syn-sent']);
  assert.deepEqual(l.routers.b!.tcp!.flows(l.clock.now()), []);
  socket.destroy();
});

test('priming on sim sockets: the TTL is measured from the path as in the lab (one NAT -> 2, a home NAT behind a carrier NAT -> 3; no NAT: none)', async () => {
  const l = createSimLab({ a: { kind: 'port-restricted' }, b: { kind: 'port-restricted', carrier: 'port-restricted' }, seed: 'ttl' });
  const measure = (host: string, publicAddress: string): Promise<unknown> => l.clock.run(simTtlPriming(l.hosts[host]!).measure(publicAddress, '0.0.0.0'));
  assert.deepEqual(await measure('a1', l.routers.a!.wanAddress!), { ttl: 2, hops: 1 });
  assert.deepEqual(await measure('b1', l.routers['carrier-b']!.wanAddress!), { ttl: 3, hops: 2 });
  const open = createSimLab({ a: { kind: 'open' }, seed: 'ttl' });
  const own = open.hosts.a1!.addresses[0]!;
  assert.equal((await open.clock.run(simTtlPriming(open.hosts.a1!).measure(own, '0.0.0.0'))).ttl, null);
});

test('with 20 % loss each way, a stream arrives whole and in order (data and FIN retransmitted after an RTO)', async () => {
  const l = createSimLab({ a: { kind: 'port-restricted', lossPercent: 20, wan: { latencyMs: 10, jitterMs: 5 } }, seed: 'lossy' });
  const { server } = await listen(l, 'server', 3478);
  const arrived = once(server, 'connection') as Promise<[net.Socket]>;
  const connected = await connect(l, 'a1', { host: SERVER, port: 3478 });
  assert.equal(connected.error, undefined, 'the handshake is retransmitted too');
  const [far] = await l.clock.run(arrived);
  const chunks = Array.from({ length: 200 }, (_, i) => `<${i}>`);
  for (const chunk of chunks) connected.socket.write(chunk);
  connected.socket.end();
  const got = await l.clock.run(new Promise<string>((resolve) => {
    let text = '';
    far.on('data', (chunk: Buffer) => { text += chunk.toString(); });
    far.on('end', () => resolve(text));
  }));
  assert.equal(got, chunks.join(''));
  assert.ok(l.network.stats.loss > 10, `${l.network.stats.loss} segments lost`);
});
