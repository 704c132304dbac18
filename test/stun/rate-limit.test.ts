import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { once, until } from '../support/wait.js';
import { StunServer } from '../../src/stun/server.js';
import { StunUdpClient } from '../../src/stun/udp-client.js';
import { SourceRateLimit } from '../../src/stun/source-rate-limit.js';
import { Method, MessageClass, encodeMessage, newTransactionId } from '../../src/wire/index.js';

const RATE = 5;
const FLOOD = 300;
let server: StunServer;
const sockets: dgram.Socket[] = [];

async function udpSocket(address: string): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, address);
  await once(socket, 'listening');
  sockets.push(socket);
  return socket;
}

before(async () => {
  server = await StunServer.listen({ address: '127.0.0.1', port: 0, udpRatePerSource: RATE, native: false });
});

after(async () => {
  for (const s of sockets) s.close();
  await server.close();
});

test(`one source IP gets at most a burst of ${2 * RATE} and ${RATE} Bindings a second answered; another source is still answered`, async () => {
  const flooder = await udpSocket('127.0.0.1');
  let received = 0;
  flooder.on('message', () => received++);
  const started = performance.now();
  // Fast-path Bindings and general-path ones (PADDING) count alike.
  for (let i = 0; i < FLOOD; i++) {
    const attributes = i % 2 === 0 ? [] : [{ type: 0x0026, value: new Uint8Array(8) }];
    flooder.send(encodeMessage({ method: Method.Binding, messageClass: MessageClass.Request, transactionId: newTransactionId(), attributes }), server.addresses[0]!.port, '127.0.0.1');
  }
  // Every datagram is either answered or counted as rate-limited: the server has seen them all.
  await until(() => server.stats.responses + server.stats.rateLimited >= FLOOD, 'the server handled the flood', { seen: () => JSON.stringify(server.stats) });
  const seconds = (performance.now() - started) / 1000;
  const allowed = 2 * RATE + Math.ceil(RATE * seconds);
  assert.ok(server.stats.responses <= allowed, `${server.stats.responses} answered in ${seconds.toFixed(2)} s; at most ${allowed} allowed`);
  assert.ok(server.stats.responses >= 2 * RATE, `the burst of ${2 * RATE} was answered (${server.stats.responses})`);
  assert.equal(server.stats.rateLimited, FLOOD - server.stats.responses);

  // 127.0.0.2 is another source on Linux loopback (the whole of 127/8 is local).
  const other = new StunUdpClient(await udpSocket('127.0.0.2'));
  const { message } = await other.request(server.addresses[0]!);
  assert.equal(message.messageClass, MessageClass.SuccessResponse);
  other.close();
});

test('the table of sources is bounded: the oldest source is forgotten first', () => {
  let now = 0;
  const limit = new SourceRateLimit({ rate: 1, maxSources: 3, now: () => now });
  for (const ip of ['a', 'b', 'c']) assert.equal(limit.allow(ip), true);
  assert.equal(limit.allow('a'), true); // burst 2
  assert.equal(limit.allow('a'), false);
  assert.equal(limit.size, 3);
  assert.equal(limit.allow('d'), true); // forgets 'a', the oldest
  assert.equal(limit.size, 3);
  assert.equal(limit.allow('a'), true, 'a forgotten source starts again with a full burst');
  assert.equal(limit.allow('d'), true);
  assert.equal(limit.allow('d'), false, 'd spent its burst');
  now += 1000;
  assert.equal(limit.allow('d'), true, 'refilled at rate per second');
});

test('a rate of 0 turns the limit off', () => {
  const limit = new SourceRateLimit({ rate: 0 });
  for (let i = 0; i < 1000; i++) assert.equal(limit.allow('a'), true);
  assert.equal(limit.size, 0);
});
