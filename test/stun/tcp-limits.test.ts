import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { closed, once, until } from '../support/wait.js';
import { StunServer, type StunServerOptions } from '../../src/stun/server.js';
import { StunTcpClient } from '../../src/stun/tcp-client.js';
import { type TcpNet, realTcpNet } from '../../src/tcp-net.js';
import { AttrType, Method, MessageClass, encodeMessage, getAttribute, newTransactionId, xorMappedAddress } from '../../src/wire/index.js';

// The attacks of issue 11 on STUN over TCP, with limits small enough to run in seconds.

const servers: StunServer[] = [];
const clients: net.Socket[] = [];

after(async () => {
  for (const c of clients) c.destroy();
  await Promise.all(servers.map((s) => s.close()));
});

/** A server whose accepted sockets the test can look at (the real node:net underneath). */
async function serverWithSockets(options: Partial<StunServerOptions>): Promise<{ server: StunServer; accepted: net.Socket[] }> {
  const accepted: net.Socket[] = [];
  const tcpNet: TcpNet = {
    connect: realTcpNet.connect,
    createServer: (opts, listener) => realTcpNet.createServer(opts, (socket) => {
      accepted.push(socket);
      listener?.(socket);
    }),
  };
  const server = await StunServer.listen({ address: '127.0.0.1', port: 0, software: 'natpunch test', native: false, net: tcpNet, ...options });
  servers.push(server);
  return { server, accepted };
}

async function connect(port: number, localAddress = '127.0.0.1'): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  clients.push(socket);
  socket.on('error', () => undefined); // a reset from the server is what some tests expect
  await once(socket, 'connect');
  return socket;
}

const bindingRequest = (): Buffer => Buffer.from(encodeMessage({ method: Method.Binding, messageClass: MessageClass.Request, transactionId: newTransactionId(), attributes: [] }));

/** The first 4 bytes of a STUN Binding request that declares 2008 bytes of attributes (a 2028-byte frame). */
const trickleStart = (): Buffer => bindingRequest().subarray(0, 4).fill(0x07, 2, 3).fill(0xd8, 3, 4);

/** A Binding over a new TCP connection from `localAddress`; resolves with the mapped address's IP. */
async function bindFrom(port: number, localAddress: string): Promise<string> {
  const client = await StunTcpClient.connect({ family: 4, address: '127.0.0.1', port }, { localAddress, timeoutMs: 5000 });
  try {
    const response = await client.request();
    assert.equal(response.messageClass, MessageClass.SuccessResponse);
    return xorMappedAddress.decode(getAttribute(response, AttrType.XorMappedAddress)!, response.transactionId).address;
  } finally {
    client.close();
  }
}

test('finding 1: a client that sends Bindings and never reads: the server stops reading it, its output stays bounded, and it is closed when idle', async () => {
  const HIGH = 16_384;
  const { server, accepted } = await serverWithSockets({ tcpHighWaterMark: HIGH, tcpIdleTimeoutMs: 2000 });
  const client = await connect(server.addresses[0]!.port);
  client.pause(); // never reads: the server's answers pile up unless it stops reading
  const chunk = Buffer.concat(Array.from({ length: 3276 }, bindingRequest)); // 64 KiB of 20-byte requests
  const LIMIT = 32 << 20;
  let sent = 0;
  let peak = 0;
  // Write until our own writes back up (the server stopped reading) or LIMIT bytes went out.
  while (sent < LIMIT && client.writableLength < 4 << 20) {
    client.write(chunk);
    sent += chunk.length;
    await new Promise((resolve) => setImmediate(resolve));
    peak = Math.max(peak, accepted[0]?.writableLength ?? 0);
    if (peak > 8 * HIGH) break; // already failed: no need to go on
  }
  // One response is at most 20 + 12 + 16 (SOFTWARE) bytes here; the server stops at the mark.
  assert.ok(peak <= HIGH + 64, `the server buffered ${peak} bytes of output for a client that does not read (high-water mark ${HIGH})`);
  assert.ok(sent < LIMIT, `the server kept reading: ${sent} bytes of requests accepted from a client that reads nothing`);
  assert.equal(server.stats.tcpPaused, 1);
  // Nothing moves on the connection any more: the idle timeout closes it.
  await once(accepted[0]!, 'close', { timeoutMs: 10_000 });
  await until(() => server.stats.tcpConnections === 0 && server.stats.tcpPaused === 0, 'the paused connection counted out', { seen: () => JSON.stringify(server.stats) });
});

test('finding 1: a client that reads slowly gets every answer: pausing loses nothing', async () => {
  const { server } = await serverWithSockets({ tcpHighWaterMark: 1024 });
  const client = await connect(server.addresses[0]!.port);
  const COUNT = 5000;
  let received = 0;
  client.on('data', (data: Buffer) => { received += data.length; });
  client.write(Buffer.concat(Array.from({ length: COUNT }, bindingRequest)));
  const size = 20 + 12 + 4 + 16; // XOR-MAPPED-ADDRESS and SOFTWARE 'natpunch test'
  await until(() => received >= COUNT * size, `${COUNT} answers`, { seen: () => `${received} bytes, ${JSON.stringify(server.stats)}` });
  assert.equal(received, COUNT * size);
  assert.equal(server.stats.responses, COUNT);
});

test('finding 2: a message must arrive whole within tcpFrameTimeoutMs of its first byte; a trickle does not reset the deadline', async () => {
  const { server } = await serverWithSockets({ tcpFrameTimeoutMs: 500, tcpIdleTimeoutMs: 30_000 });
  const client = await connect(server.addresses[0]!.port);
  const started = performance.now();
  client.write(trickleStart());
  // The attack: one more byte every 100 ms, each well inside the idle timeout.
  const trickle = setInterval(() => client.write(Buffer.from([0])), 100);
  try {
    await closed(client, { timeoutMs: 5000 });
  } finally {
    clearInterval(trickle);
  }
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 450, `closed after ${elapsed.toFixed(0)} ms, before the deadline`);
  assert.equal(server.stats.tcpFrameTimeouts, 1);
});

test('finding 2: with every slot held by trickling connections, a legitimate Binding over TCP evicts the stalest and succeeds', async () => {
  const { server, accepted } = await serverWithSockets({ maxTcpConnections: 8, tcpFrameTimeoutMs: 60_000, tcpIdleTimeoutMs: 60_000 });
  const port = server.addresses[0]!.port;
  const attackers: net.Socket[] = [];
  for (let i = 0; i < 8; i++) {
    const attacker = await connect(port);
    attacker.write(trickleStart());
    attackers.push(attacker);
  }
  await until(() => server.stats.tcpConnections === 8, 'eight attackers hold every slot', { seen: () => JSON.stringify(server.stats) });
  assert.equal(await bindFrom(port, '127.0.0.2'), '127.0.0.2');
  assert.equal(server.stats.tcpEvicted, 1);
  assert.equal(accepted[0]!.destroyed, true, 'the first attacker, the stalest, gave way');
  assert.ok(accepted.slice(1, 8).every((s) => !s.destroyed), 'only one connection was evicted');
});

test('finding 2: over the per-address cap a new connection is closed at once; another address is still served', async () => {
  const { server } = await serverWithSockets({ maxTcpConnectionsPerAddress: 3, tcpIdleTimeoutMs: 60_000 });
  const port = server.addresses[0]!.port;
  for (let i = 0; i < 3; i++) await connect(port);
  await until(() => server.stats.tcpConnections === 3, 'three connections from 127.0.0.1', { seen: () => JSON.stringify(server.stats) });
  const fourth = await connect(port);
  await closed(fourth, { timeoutMs: 5000 });
  assert.equal(server.stats.tcpRefused, 1);
  assert.equal(await bindFrom(port, '127.0.0.2'), '127.0.0.2');
});
