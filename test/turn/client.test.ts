import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  TurnClient, connectTcpTransport, connectTlsTransport, openUdpTransport, restCredentials, udpTransport,
  type TurnTransport,
} from '../../src/turn/index.js';
import { NatpunchError, TurnError } from '../../src/errors.js';
import type { TransportAddress } from '../../src/wire/index.js';
import { startTurnRelay, type TurnRelay } from '../support/coturn.js';
import { skipUnlessInstalled } from '../support/process.js';
import { until } from '../support/wait.js';

/**
 * The TURN client against coturn 4.6.1's turnserver, started per test on 127.0.0.1 (UDP and TCP
 * on one free port, relaying on 127.0.0.1). Peers are plain UDP sockets on 127.0.0.1 or
 * 127.0.0.2, or the relayed address of another client. Nothing leaves loopback.
 */

const TIMEOUT = { timeout: 60_000 };
const USER = 'alice';
const PASSWORD = 'secret';

/**
 * Clean-ups run last-registered first, so clients free their allocations (Refresh 0) while the
 * server still runs; node:test runs `t.after` hooks in registration order.
 */
const cleanups = new WeakMap<TestContext, (() => unknown)[]>();
function defer(t: TestContext, cleanup: () => unknown): void {
  let stack = cleanups.get(t);
  if (!stack) {
    const created: (() => unknown)[] = [];
    cleanups.set(t, (stack = created));
    t.after(async () => {
      for (const step of created.reverse()) await step();
    });
  }
  stack.push(cleanup);
}

async function relay(t: TestContext, options: Parameters<typeof startTurnRelay>[0] = { users: [`${USER}:${PASSWORD}`] }): Promise<TurnRelay | undefined> {
  if (skipUnlessInstalled(t, ['turnserver'], 'apt-get install -y coturn')) return undefined;
  const server = await startTurnRelay(options);
  defer(t, () => server.stop());
  return server;
}

function client(t: TestContext, transport: TurnTransport): TurnClient {
  const c = new TurnClient(transport);
  defer(t, () => c.close());
  return c;
}

async function udpClient(t: TestContext, server: TurnRelay): Promise<TurnClient> {
  return client(t, await openUdpTransport(server.address, { localAddress: '127.0.0.1' }));
}

async function tcpClient(t: TestContext, server: TurnRelay): Promise<TurnClient> {
  return client(t, await connectTcpTransport(server.address));
}

/** A plain UDP socket standing for a peer on the other side of the relay. */
async function peerSocket(t: TestContext, address = '127.0.0.1'): Promise<{ socket: dgram.Socket; address: TransportAddress }> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  defer(t, () => new Promise<void>((resolve) => socket.close(() => resolve())));
  return { socket, address: { family: 4, address, port: socket.address().port } };
}

function sendFrom(socket: dgram.Socket, to: TransportAddress, data: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => socket.send(data, to.port, to.address, (error) => (error ? reject(error) : resolve())));
}

function nextDatagram(socket: dgram.Socket): Promise<{ data: Buffer; from: TransportAddress }> {
  return new Promise((resolve) => socket.once('message', (data, rinfo) => resolve({ data, from: { family: 4, address: rinfo.address, port: rinfo.port } })));
}

function nextData(c: TurnClient): Promise<{ peer: TransportAddress; data: Uint8Array }> {
  return new Promise((resolve) => c.once('data', (peer, data) => resolve({ peer, data: Uint8Array.from(data) })));
}

/** Wraps a transport to count what kind of message went each way (STUN method or ChannelData). */
function recording(inner: TurnTransport): TurnTransport & { sent: string[]; received: string[] } {
  const kind = (bytes: Uint8Array): string => ((bytes[0]! & 0xc0) === 0x40 ? 'channel-data' : `stun-0x${((bytes[0]! << 8) | bytes[1]!).toString(16)}`);
  const sent: string[] = [];
  const received: string[] = [];
  return {
    kind: inner.kind,
    sent,
    received,
    send(bytes) {
      sent.push(kind(bytes));
      inner.send(bytes);
    },
    onReceive(handler) {
      inner.onReceive((bytes) => {
        received.push(kind(bytes));
        handler(bytes);
      });
    },
    onClose: inner.onClose ? (handler) => inner.onClose!(handler) : undefined,
    close: () => inner.close(),
  };
}

const credentials = { username: USER, password: PASSWORD };

test('allocates a relayed address over UDP, answering the 401 challenge', TIMEOUT, async (t) => {
  const server = await relay(t);
  if (!server) return;
  const transport = await openUdpTransport(server.address, { localAddress: '127.0.0.1' });
  const c = client(t, transport);
  // coturn grants at least 600 s (its default) and at most 3600 s.
  const allocation = await c.allocate({ ...credentials, lifetimeSeconds: 1200 });
  assert.equal(allocation.relayed.address, '127.0.0.1');
  assert.ok(allocation.relayed.port > 0);
  assert.equal(allocation.mapped.address, '127.0.0.1');
  assert.equal(allocation.lifetime, 1200);
  assert.deepEqual(c.allocation, allocation);
  assert.equal(await c.refresh(1800), 1800, 'a Refresh changes the lifetime');
  assert.equal(c.allocation?.lifetime, 1800);
});

test('allocates over TCP; the mapped address is the TCP connection\'s local end', TIMEOUT, async (t) => {
  const server = await relay(t);
  if (!server) return;
  const c = await tcpClient(t, server);
  const allocation = await c.allocate(credentials);
  assert.equal(allocation.relayed.address, '127.0.0.1');
  assert.equal(allocation.mapped.address, '127.0.0.1');
  assert.ok(allocation.lifetime > 0);
});

/** A client over a recorded UDP transport with an allocation, and a UDP peer socket. */
async function allocatedWithPeer(t: TestContext, server: TurnRelay) {
  const transport = recording(await openUdpTransport(server.address, { localAddress: '127.0.0.1' }));
  const c = client(t, transport);
  const { relayed } = await c.allocate(credentials);
  return { c, transport, relayed, peer: await peerSocket(t) };
}

/** Random bytes from the client to the peer and back through the relay, compared. */
async function exchange(c: TurnClient, relayed: TransportAddress, peer: { socket: dgram.Socket; address: TransportAddress }, lengths: [number, number]): Promise<void> {
  const toPeer = randomBytes(lengths[0]);
  const heard = nextDatagram(peer.socket);
  c.send(peer.address, toPeer);
  const got = await heard;
  assert.deepEqual(got.data, toPeer);
  assert.deepEqual(got.from, relayed, 'the peer hears the relayed address');

  const fromPeer = randomBytes(lengths[1]);
  const data = nextData(c);
  await sendFrom(peer.socket, relayed, fromPeer);
  const received = await data;
  assert.deepEqual(received.peer, peer.address);
  assert.deepEqual(received.data, Uint8Array.from(fromPeer));
}

/** A throwaway self-signed certificate for 127.0.0.1 (P-256), made with the openssl CLI. */
function selfSignedCertificate(): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'natpunch-turn-tls-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('over TCP, the server going away closes the client with an error; later requests fail', TIMEOUT, async (t) => {
  const server = await relay(t);
  if (!server) return;
  const c = await tcpClient(t, server);
  await c.allocate(credentials);
  const closed = new Promise<Error | undefined>((resolve) => c.once('close', resolve));
  await server.stop();
  const error = await closed;
  assert.ok(NatpunchError.is(error) && error.code === 'ERR_TURN', String(error));
  // A reset or an orderly close, as the kernel happens to report the killed server's socket.
  assert.match(error.message, /^TURN over TCP: (the server closed the connection|read ECONNRESET)$/);
  assert.equal(c.closed, true);
  assert.equal(c.allocation, undefined);
  await assert.rejects(c.createPermission(['127.0.0.1']), /closed/);
});

test('allocates over TLS, verifying the server certificate, and relays data to a UDP peer', TIMEOUT, async (t) => {
  if (skipUnlessInstalled(t, ['openssl'], 'apt-get install -y openssl')) return;
  const certificate = selfSignedCertificate();
  const server = await relay(t, { users: [`${USER}:${PASSWORD}`], tls: certificate });
  if (!server) return;
  await assert.rejects(connectTlsTransport(server.tlsAddress!), /self-signed|self signed/, 'an unknown certificate is refused');
  const c = client(t, await connectTlsTransport(server.tlsAddress!, { tls: { ca: certificate.cert } }));
  assert.equal(c.transport.kind, 'tls');
  const { relayed } = await c.allocate(credentials);
  const peer = await peerSocket(t);
  await c.bindChannel(peer.address);
  await exchange(c, relayed, peer, [333, 5]);
});

test('exchanges data with a UDP peer by Send and Data indications', TIMEOUT, async (t) => {
  const server = await relay(t);
  if (!server) return;
  const { c, transport, relayed, peer } = await allocatedWithPeer(t, server);
  await c.createPermission([peer.address.address]);
  await exchange(c, relayed, peer, [1200, 777]);
  assert.ok(transport.sent.includes('stun-0x16'), `a Send indication went out: ${transport.sent}`);
  assert.ok(transport.received.includes('stun-0x17'), `a Data indication came in: ${transport.received}`);
  assert.ok(!transport.sent.includes('channel-data') && !transport.received.includes('channel-data'));
});

test('exchanges data with a UDP peer over a channel (ChannelData both ways)', TIMEOUT, async (t) => {
  const server = await relay(t);
  if (!server) return;
  const { c, transport, relayed, peer } = await allocatedWithPeer(t, server);
  const channel = await c.bindChannel(peer.address);
  assert.equal(channel, 0x4000, 'the first channel is 0x4000');
  assert.equal(await c.bindChannel(peer.address), 0x4000, 'a bound peer keeps its channel');
  assert.equal(c.channelOf(peer.address), 0x4000);
  await exchange(c, relayed, peer, [1000, 3]);
  assert.deepEqual(transport.sent.filter((k) => k === 'channel-data' || k === 'stun-0x16'), ['channel-data']);
  assert.deepEqual(transport.received.filter((k) => k === 'channel-data' || k === 'stun-0x17'), ['channel-data']);
});

test('over its own UDP socket, ChannelData is opened where it is read: only the server\'s, only on a bound channel', TIMEOUT, async (t) => {
  const server = await relay(t);
  if (!server) return;
  const transport = await openUdpTransport(server.address, { localAddress: '127.0.0.1' });
  assert.equal(typeof transport.onChannelData, 'function', 'the transport opens ChannelData itself');
  const c = client(t, transport);
  const { relayed, mapped } = await c.allocate(credentials);
  const peer = await peerSocket(t);
  const channel = await c.bindChannel(peer.address);
  const received: { peer: TransportAddress; data: Uint8Array }[] = [];
  c.on('data', (from, data) => received.push({ peer: from, data: Uint8Array.from(data) }));
  const payloads = [randomBytes(1200), randomBytes(1), randomBytes(0), randomBytes(333)];
  // Before them, straight to the client's socket from another socket: ChannelData on the bound
  // channel. Only the server's ChannelData is data from the peer (RFC 8656 §12.6).
  const spoofer = await peerSocket(t);
  const spoofed = Buffer.concat([Buffer.from([channel >> 8, channel & 0xff, 0, 4]), randomBytes(4)]);
  await sendFrom(spoofer.socket, mapped, spoofed);
  for (const payload of payloads) await sendFrom(peer.socket, relayed, payload);
  const last = payloads.at(-1)!;
  await until(() => received.some((r) => Buffer.from(r.data).equals(last)), 'the last payload through the relay');
  assert.deepEqual(received.map((r) => r.peer), payloads.map(() => peer.address), 'every delivery is from the peer, none from the spoofer');
  assert.deepEqual(received.map((r) => Buffer.from(r.data)), payloads, 'each payload intact, in order, the empty one included');
});

test('two clients, one over TCP and one over UDP, talk through their relayed addresses', TIMEOUT, async (t) => {
  const server = await relay(t);
  if (!server) return;
  const tcpTransport = recording(await connectTcpTransport(server.address));
  const a = client(t, tcpTransport);
  const b = await udpClient(t, server);
  const [relayedA, relayedB] = [(await a.allocate(credentials)).relayed, (await b.allocate(credentials)).relayed];
  await b.createPermission([relayedA.address]);
  await a.bindChannel(relayedB);

  // Odd lengths: over TCP ChannelData is padded to 4 bytes (RFC 8656 §12.5) and must be read back exact.
  for (const length of [1, 5, 1023]) {
    const ab = randomBytes(length);
    const atB = nextData(b);
    a.send(relayedB, ab);
    const gotB = await atB;
    assert.deepEqual(gotB.peer, relayedA);
    assert.deepEqual(gotB.data, Uint8Array.from(ab));

    const ba = randomBytes(length + 2);
    const atA = nextData(a);
    b.send(relayedA, ba);
    const gotA = await atA;
    assert.deepEqual(gotA.peer, relayedB);
    assert.deepEqual(gotA.data, Uint8Array.from(ba));
  }
  assert.ok(tcpTransport.sent.includes('channel-data') && tcpTransport.received.includes('channel-data'), `${tcpTransport.sent} / ${tcpTransport.received}`);
});

test('data from a peer without a permission is not delivered, nor is data sent to it', TIMEOUT, async (t) => {
  const server = await relay(t);
  if (!server) return;
  const c = await udpClient(t, server);
  const { relayed } = await c.allocate(credentials);
  const stranger = await peerSocket(t, '127.0.0.2');
  const friend = await peerSocket(t, '127.0.0.1');
  await c.createPermission(['127.0.0.1']);

  const delivered: string[] = [];
  c.on('data', (peer, data) => delivered.push(`${peer.address}:${Buffer.from(data).toString()}`));
  const first = nextData(c);
  // The stranger's datagram reaches the relay first (its send completed), and is dropped there.
  await sendFrom(stranger.socket, relayed, Buffer.from('from-stranger'));
  await sendFrom(friend.socket, relayed, Buffer.from('from-friend'));
  const got = await first;
  assert.equal(got.peer.address, '127.0.0.1');
  assert.equal(Buffer.from(got.data).toString(), 'from-friend');

  // To the stranger: dropped without a permission; after one is made (a round trip) it passes.
  c.send(stranger.address, Buffer.from('too-early'));
  await c.createPermission(['127.0.0.2']);
  const heard = nextDatagram(stranger.socket);
  c.send(stranger.address, Buffer.from('allowed'));
  assert.equal((await heard).data.toString(), 'allowed');
  assert.deepEqual(delivered, ['127.0.0.1:from-friend']);
});

test('a wrong password is a TurnError 401 naming the user and realm', TIMEOUT, async (t) => {
  const server = await relay(t);
  if (!server) return;
  const c = await udpClient(t, server);
  await assert.rejects(c.allocate({ username: USER, password: 'wrong' }), (error: unknown) => {
    assert.ok(error instanceof TurnError, String(error));
    assert.equal(error.code, 'ERR_TURN');
    assert.equal(error.status, 401);
    assert.match(error.message, /Allocate as "alice" in realm "natpunch\.test": 401 .*check the username and password/);
    return true;
  });
  assert.equal(c.allocation, undefined);
});

test('close() frees the allocation: the same 5-tuple allocates again (and could not before)', TIMEOUT, async (t) => {
  const server = await relay(t);
  if (!server) return;
  // One socket the test owns, as the peer owns its one socket: transports only get what `feed` offers.
  const { socket } = await peerSocket(t);
  const transports: ReturnType<typeof udpTransport>[] = [];
  socket.on('message', (bytes, rinfo) => {
    for (const transport of transports) transport.feed(bytes, rinfo);
  });
  const over = (): TurnClient => {
    const transport = udpTransport(socket, server.address);
    transports.push(transport);
    return client(t, transport);
  };

  const first = over();
  await first.allocate(credentials);
  const second = over();
  await assert.rejects(second.allocate(credentials), (error: unknown) => error instanceof TurnError && error.status === 437 && /allocation does not match this 5-tuple/.test(error.message));

  let closeEvents = 0;
  first.on('close', (error) => {
    assert.equal(error, undefined);
    closeEvents++;
  });
  await Promise.all([first.close(), first.close()]);
  await first.close();
  assert.equal(closeEvents, 1, 'close is idempotent');
  assert.equal(first.closed, true);

  // coturn frees a deleted allocation on its next timer tick (up to ~1 s), not at once; until
  // then a new Allocate on the 5-tuple still gets 437. Its log says when: the 600 s allocation
  // ends by "allocation timeout" only because the Refresh set its lifetime to 0.
  const local = `127\\.0\\.0\\.1:${socket.address().port}`;
  await server.output.waitFor([
    /refreshed, realm=<natpunch\.test>, username=<alice>, lifetime=0/,
    new RegExp(`closed \\(2nd stage\\).*remote ${local}, reason: allocation timeout`),
  ]);
  const third = over();
  const allocation = await third.allocate(credentials);
  assert.ok(allocation.relayed.port > 0);
  assert.doesNotThrow(() => first.send(allocation.relayed, new Uint8Array(1)), 'send after close drops silently');
});

test('REST ephemeral credentials (coturn --use-auth-secret) allocate; expired or mis-signed ones get 401', TIMEOUT, async (t) => {
  const secret = 'natpunch-shared-secret';
  const server = await relay(t, { extra: ['--use-auth-secret', `--static-auth-secret=${secret}`] });
  if (!server) return;
  const good = restCredentials(secret, 'bob', 600);
  assert.match(good.username, /^\d+:bob$/);
  const c = await udpClient(t, server);
  const allocation = await c.allocate(good);
  assert.equal(allocation.relayed.address, '127.0.0.1');

  const expired = restCredentials(secret, 'bob', 60, Date.now() - 3_600_000);
  await assert.rejects((await udpClient(t, server)).allocate(expired), (error: unknown) => error instanceof TurnError && error.status === 401);
  const forged = restCredentials('another-secret', 'bob', 600);
  await assert.rejects((await udpClient(t, server)).allocate(forged), (error: unknown) => error instanceof TurnError && error.status === 401);
});
