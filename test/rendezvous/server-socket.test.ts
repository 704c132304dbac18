/**
 * The rendezvous server's WebSockets (src/rendezvous/server-socket.ts): events go to one set of
 * shared handlers, listeners can still be added, pings are answered by the server (ws's autoPong
 * is off), and a peer that never reads is dropped, pings or not.
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { once } from '../support/wait.js';
import { ServerSocket } from '../../src/rendezvous/server-socket.js';
import { RawClient, Resources, startServers, until } from './helpers.js';

const resources = new Resources();
afterEach(() => resources.close());

function serverSide(): { socket: ServerSocket<string>; heard: string[] } {
  // As ws's WebSocketServer makes them: no address, no protocols, the server's options.
  const socket = new ServerSocket<string>(null, undefined, { autoPong: false });
  const heard: string[] = [];
  socket.attach('owner', {
    message: (owner, data) => heard.push(`${owner} message ${String(data)}`),
    close: (owner) => heard.push(`${owner} close`),
    ping: (owner, data) => heard.push(`${owner} ping ${data.toString()}`),
    pong: (owner) => heard.push(`${owner} pong`),
    error: (owner, error) => heard.push(`${owner} error ${error.message}`),
  });
  return { socket, heard };
}

test('a socket hands its events to the shared handlers, and listeners added later still hear them', () => {
  const { socket, heard } = serverSide();
  assert.equal(socket.listenerCount('close'), 0);
  socket.emit('message', Buffer.from('hi'), false);
  socket.emit('ping', Buffer.from('p'));
  socket.emit('pong', Buffer.alloc(0));
  // An 'error' with no listener is handled (an EventEmitter would throw it).
  assert.equal(socket.emit('error', new Error('boom')), true);
  const closes: string[] = [];
  socket.once('close', () => closes.push('listener'));
  assert.equal(socket.listenerCount('close'), 1);
  socket.emit('close');
  socket.emit('close');
  assert.deepEqual(heard, ['owner message hi', 'owner ping p', 'owner pong', 'owner error boom', 'owner close', 'owner close']);
  assert.deepEqual(closes, ['listener'], 'once: the listener heard the first close only');
  assert.equal(socket.listenerCount('close'), 0);
  assert.equal(socket.extensions, '', 'no extensions');
});

test('the server answers a peer\'s ping with a pong carrying the same data', async () => {
  const { url } = await startServers(resources);
  const raw = await RawClient.open(resources, url);
  assert.equal((await raw.next()).type, 'hello');
  const pong = once(raw.ws, 'pong');
  raw.ws.ping(Buffer.from('are you there'));
  const [data] = await pong as [Buffer];
  assert.equal(data.toString(), 'are you there');
});

test('a peer that pings and never reads is dropped once the server\'s unsent bytes pass maxBufferedBytes', async () => {
  const { url, server } = await startServers(resources, { limits: { maxBufferedBytes: 4096 } });
  const raw = await RawClient.open(resources, url);
  assert.equal((await raw.next()).type, 'hello');
  // The peer stops reading: the server's pongs fill the kernel's buffers, then its own.
  const tcp = (raw.ws as unknown as { _socket: { pause(): void } })._socket;
  tcp.pause();
  const payload = Buffer.alloc(125, 0x61);
  let sent = 0;
  // Each round sends pings, then lets the server read them; the kernel's buffers on loopback
  // hold a few MiB, so it takes tens of thousands of 127-byte pongs. Bounded: 64 MiB of pongs.
  while (server.stats.connections > 0) {
    assert.ok(sent < 500_000, `the server still holds the socket after ${sent} unread pongs`);
    for (let i = 0; i < 1000; i++) raw.ws.ping(payload);
    sent += 1000;
    await new Promise((resolve) => setImmediate(resolve));
  }
  await until(() => server.stats.connections === 0, 'the server dropping the socket');
});
