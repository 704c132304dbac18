import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { generateIdentity } from '../../src/identity/index.js';
import { punchServerless } from '../../src/peer/serverless.js';

/** A UDP port free on 127.0.0.1 just now. */
async function freePort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

const loopback = (port: number) => ({ family: 4 as const, address: '127.0.0.1', port });

test('two peers punch on loopback, authenticate each other by id, and exchange data both ways', async (t) => {
  const [portA, portB] = [await freePort(), await freePort()];
  const a = generateIdentity();
  const b = generateIdentity();
  const [ca, cb] = await Promise.all([
    punchServerless({ identity: a, localPort: portA, remote: loopback(portB), peerId: b.peerId, timeoutMs: 5_000 }),
    punchServerless({ identity: b, localPort: portB, remote: loopback(portA), peerId: a.peerId, timeoutMs: 5_000 }),
  ]);
  t.after(async () => { await Promise.all([ca.close(), cb.close()]); });
  assert.equal(ca.connection.remotePeerId, b.peerId);
  assert.equal(cb.connection.remotePeerId, a.peerId);
  assert.equal(ca.authenticated, true);
  assert.equal(ca.connection.path, 'direct-udp');
  assert.equal(ca.connection.technique, 'udp-hole-punch');
  const read = (c: typeof ca.connection): Promise<string> => new Promise((resolve) => {
    let text = '';
    c.on('data', (chunk: Buffer) => { text += chunk.toString(); });
    c.once('end', () => resolve(text));
  });
  const [fromB, fromA] = [read(ca.connection), read(cb.connection)];
  ca.connection.end('hello from a');
  cb.connection.end('hello from b');
  assert.equal(await fromB, 'hello from b');
  assert.equal(await fromA, 'hello from a');
});

test('an abort while punching rejects with ERR_ABORTED and releases the port', async () => {
  const port = await freePort();
  const controller = new AbortController();
  const punching = punchServerless({ identity: generateIdentity(), localPort: port, remote: loopback(await freePort()), signal: controller.signal });
  setTimeout(() => controller.abort(), 300);
  await assert.rejects(punching, { code: 'ERR_ABORTED' });
  // The port is free again at once.
  const socket = dgram.createSocket('udp4');
  socket.bind(port, '127.0.0.1');
  await once(socket, 'listening');
  socket.close();
});
