import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { once, within } from '../support/wait.js';
import { WebSocketServer } from 'ws';
import { AbortedError, UsageError } from '../../src/errors.js';
import { generateIdentity } from '../../src/identity/index.js';
import { DOMAIN, RendezvousClient, RendezvousError, signObject } from '../../src/rendezvous/index.js';
import {
  type DisconnectInfo, type ReconnectInfo, Backoff, ReconnectingRendezvousClient, isPermanent,
} from '../../src/rendezvous/reconnecting-client.js';
import { HostileRendezvousServer } from './hostile-server.js';
import { Resources, candidate, token, udpSocket } from './helpers.js';

const resources = new Resources();
afterEach(() => resources.close());

test('the backoff doubles from 0.5 s to 30 s with equal jitter, and starts over after reset()', () => {
  const low = new Backoff({ random: () => 0 });
  const high = new Backoff({ random: () => 0.999_999 });
  const lows = Array.from({ length: 9 }, () => low.next());
  const highs = Array.from({ length: 9 }, () => high.next());
  // Half the base at least, the whole base at most: never at once, never above the cap.
  assert.deepEqual(lows, [250, 500, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000]);
  assert.deepEqual(highs, [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  low.reset();
  assert.equal(low.next(), 250);
  const tuned = new Backoff({ minDelayMs: 10, maxDelayMs: 40, random: () => 0.5 });
  assert.deepEqual(Array.from({ length: 4 }, () => tuned.next()), [8, 15, 30, 30]);
});

test('which reasons stop the reconnection and which are retried', () => {
  const table: [unknown, boolean][] = [
    [new RendezvousError('replaced', 'a newer registration took over'), true],
    [new RendezvousError('bad-signature', 'x'), true],
    [new RendezvousError('unsupported-version', 'x'), true],
    [new RendezvousError('invalid', 'x'), true],
    [new RendezvousError('bad-nonce', 'x'), true],
    [new RendezvousError('closed', 'the server closed the connection (1006)'), false],
    [new RendezvousError('shutdown', 'x'), false],
    [new RendezvousError('timeout', 'x'), false],
    [new RendezvousError('server-full', 'x'), false],
    [new RendezvousError('registration-timeout', 'x'), false],
    [new RendezvousError('srflx-unproven', 'x'), false],
    [new RendezvousError('rate-limited', 'x'), false],
    [new RendezvousError('a-code-from-a-newer-server', 'x'), false],
    [new AbortedError(), false],
    [new UsageError('udpSocket must be bound'), true],
    [new Error('ECONNRESET'), false],
  ];
  for (const [error, permanent] of table) assert.equal(isPermanent(error), permanent, String(error));
});

/** A WebSocket server on `port` whose hello speaks only other protocol versions (default: version 1, as version-1 servers say it). */
async function otherVersionServer(port = 0, versions: { version: number; versions?: readonly number[] } = { version: 1 }): Promise<WebSocketServer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port });
  wss.on('connection', (ws) => ws.send(JSON.stringify({ type: 'hello', ...versions, nonce: token(), token: token(), stun: [], serverTime: Date.now() })));
  await once(wss, 'listening');
  return resources.add(wss, (s) => new Promise((resolve) => { for (const c of s.clients) c.terminate(); s.close(() => resolve(undefined)); }));
}

for (const [what, versions, spoken] of [
  ['a version-1 hello', { version: 1 }, '1'],
  ['a hello of only newer versions', { version: 4, versions: [3, 4] }, '3, 4'],
] as const) {
  test(`${what} fails registration at once with reason unsupported-version, naming both sides' versions`, async () => {
    const wss = await otherVersionServer(0, versions);
    const socket = await udpSocket(resources);
    const started = performance.now();
    const error = await RendezvousClient.connect({
      url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`, identity: generateIdentity(), udpSocket: socket,
      privateEndpoints: [`127.0.0.1:${socket.address().port}`],
    }).then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof RendezvousError, String(error));
    assert.equal(error.code, 'ERR_RENDEZVOUS');
    assert.equal(error.reason, 'unsupported-version');
    assert.equal(error.message, `hello.versions: the server speaks version ${spoken}, this client speaks 2: upgrade the older side`);
    assert.ok(performance.now() - started < 5_000, 'not the 10 s registration timeout');
  });
}

/** A client registered at a hostile (here: merely permissive) server that can be restarted on its port. */
async function reconnecting(server: HostileRendezvousServer) {
  const socket = await udpSocket(resources);
  const identity = generateIdentity();
  const client = resources.add(await ReconnectingRendezvousClient.connect({
    url: server.url, identity, udpSocket: socket, privateEndpoints: [`127.0.0.1:${socket.address().port}`],
    reconnect: { minDelayMs: 20, maxDelayMs: 40 },
  }), (c) => c.close());
  return { client, identity };
}

test('after a reconnection an intent accepted on the earlier connection is still a replay', async () => {
  const first = await HostileRendezvousServer.listen({ forgedCandidates: [], forge: 'hold' });
  const port = Number(new URL(first.url).port);
  const { client, identity } = await reconnecting(first);
  const someone = generateIdentity();
  const incoming = {
    type: 'incoming', intent: signObject(someone, DOMAIN.intent, {
      from: someone.peerId, to: identity.peerId, nonce: token(), expires: Date.now() + 30_000, candidates: [candidate('127.0.0.1:9')], session: token(),
    }),
  };
  first.deliver(identity.peerId, incoming);
  await first.waitFor((r) => r.some((x) => x.message.type === 'accept'));

  const disconnected = once(client, 'disconnected') as Promise<[RendezvousError, DisconnectInfo]>;
  await first.close();
  const [reason, info] = await disconnected;
  assert.equal(reason.reason, 'closed');
  assert.equal(typeof info.retryInMs, 'number');
  const reconnected = once(client, 'reconnected') as Promise<[ReconnectInfo]>;
  const second = resources.add(await HostileRendezvousServer.listen({ forgedCandidates: [], forge: 'hold', port }), (s) => s.close());
  const [again] = await reconnected;
  assert.equal(client.connected, true);
  assert.equal(again.srflx, null, 'this server lists no STUN endpoint');
  assert.ok(second.received.some((x) => x.message.type === 'register'), 'registered afresh at the new server');

  // The same server (or anyone who saw the intent) sends it again on the new connection.
  second.deliver(identity.peerId, incoming);
  await second.waitFor((r) => r.some((x) => x.message.type === 'refuse'));
  const refuse = second.received.find((x) => x.message.type === 'refuse')!.message as { reason: string };
  assert.match(refuse.reason, /^replayed: /);
});

test('a server that comes back speaking another protocol version ends the reconnection: disconnected with retryInMs null', async () => {
  const first = await HostileRendezvousServer.listen({ forgedCandidates: [] });
  const port = Number(new URL(first.url).port);
  const { client } = await reconnecting(first);
  const reports: [RendezvousError, DisconnectInfo][] = [];
  const stopped = new Promise<void>((resolve) => client.on('disconnected', (reason, info) => {
    reports.push([reason, info]);
    if (info.retryInMs === null) resolve();
  }));
  const dropped = once(client, 'disconnected');
  await first.close();
  await dropped;
  await otherVersionServer(port);
  await within(stopped, "a 'disconnected' with retryInMs null", { seen: () => JSON.stringify(reports.map(([reason, info]) => [reason.reason, info.retryInMs])) });
  assert.deepEqual(reports.map(([reason, info]) => [reason.reason, info.retryInMs === null]), [['closed', false], ['unsupported-version', true]]);
  assert.equal(client.connected, false);
  await assert.rejects(client.connect(generateIdentity().peerId), (error: unknown) => {
    assert.ok(error instanceof RendezvousError);
    assert.equal(error.reason, 'disconnected');
    assert.match(error.message, /\(unsupported-version: hello\.versions: the server speaks version 1, this client speaks 2: upgrade the older side\); not reconnecting$/);
    return true;
  });
});
