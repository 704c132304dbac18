import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { closed, once, until, within } from '../support/wait.js';
import { NatpunchServer } from '../../src/server/natpunch-server.js';
import type { HttpLimits } from '../../src/server/http-limits.js';

// Issue 11: ~20k silent connections to the HTTP port used up the file descriptors, and STUN/TCP
// and the rendezvous failed with them. The same attack with small limits.

const servers: NatpunchServer[] = [];
const sockets: net.Socket[] = [];

after(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => s.close()));
});

async function start(httpLimits: HttpLimits): Promise<{ server: NatpunchServer; port: number }> {
  const server = await NatpunchServer.listen({ address: '127.0.0.1', port: 0, httpPort: 0, relay: { builtIn: false }, httpLimits });
  servers.push(server);
  return { server, port: Number(new URL(server.rendezvousUrl!).port) };
}

async function silent(port: number, localAddress = '127.0.0.1'): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  sockets.push(socket);
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  return socket;
}

/** Opens the rendezvous WebSocket from `localAddress` and resolves with the server's first message (hello). */
async function hello(url: string, localAddress: string): Promise<{ type: string }> {
  const ws = new WebSocket(url, { localAddress });
  try {
    const [data] = await once(ws, 'message', { timeoutMs: 10_000 });
    return JSON.parse(String(data)) as { type: string };
  } finally {
    ws.terminate();
  }
}

test('a connection that sends no request head is closed after headersTimeoutMs', async () => {
  const { server, port } = await start({ headersTimeoutMs: 400 });
  const started = performance.now();
  const socket = await silent(port);
  await once(socket, 'close', { timeoutMs: 5000 });
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 350, `closed after ${elapsed.toFixed(0)} ms`);
  assert.equal(server.httpStats.headerTimeouts, 1);
});

test('a request head sent a byte at a time does not reset the header deadline', async () => {
  const { port } = await start({ headersTimeoutMs: 400 });
  const socket = await silent(port);
  const head = Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ' + 'a'.repeat(200));
  let at = 0;
  const trickle = setInterval(() => { if (at < head.length) socket.write(head.subarray(at, ++at)); }, 50);
  try {
    await closed(socket, { timeoutMs: 5000 });
  } finally {
    clearInterval(trickle);
  }
  assert.ok(at < head.length, 'closed before the head was complete');
});

test('over the per-address cap new connections are closed at once, while a WebSocket from another address still gets its hello', async () => {
  const { server, port } = await start({ headersTimeoutMs: 60_000, maxConnectionsPerAddress: 4 });
  for (let i = 0; i < 4; i++) await silent(port);
  await until(() => server.httpStats.connections === 4, 'four silent connections', { seen: () => JSON.stringify(server.httpStats) });
  const fifth = await silent(port);
  await once(fifth, 'close', { timeoutMs: 5000 });
  assert.equal(server.httpStats.refused, 1);
  // 127.0.0.2 is another source address on Linux loopback (the whole of 127/8 is local).
  const message = await hello(server.rendezvousUrl!, '127.0.0.2');
  assert.equal(message.type, 'hello');
});

test('when every connection slot is taken by silent connections, a WebSocket evicts the stalest and gets its hello', async () => {
  const { server, port } = await start({ headersTimeoutMs: 60_000, maxConnections: 6, maxConnectionsPerAddress: 100 });
  const held: net.Socket[] = [];
  for (let i = 0; i < 6; i++) held.push(await silent(port));
  await until(() => server.httpStats.connections === 6, 'six silent connections', { seen: () => JSON.stringify(server.httpStats) });
  const evicted = once(held[0]!, 'close', { timeoutMs: 5000 });
  const message = await hello(server.rendezvousUrl!, '127.0.0.2');
  assert.equal(message.type, 'hello');
  await evicted;
  assert.equal(server.httpStats.evicted, 1);
});

test('a registered peer\'s WebSocket is not evicted: with every slot a WebSocket, a newcomer is refused', async () => {
  const { server } = await start({ headersTimeoutMs: 60_000, maxConnections: 2, maxConnectionsPerAddress: 100 });
  const open: WebSocket[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const ws = new WebSocket(server.rendezvousUrl!);
      open.push(ws);
      await once(ws, 'message');
    }
    const late = new WebSocket(server.rendezvousUrl!);
    late.on('error', () => undefined); // 'socket hang up': closed before the upgrade was answered
    await within(new Promise((resolve) => late.once('close', resolve)), 'the refused WebSocket closed', { timeoutMs: 5000 });
    assert.equal(server.httpStats.refused, 1);
    assert.ok(open.every((ws) => ws.readyState === WebSocket.OPEN));
  } finally {
    for (const ws of open) ws.terminate();
  }
});
