import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { StunServer } from '../../src/stun/server.js';
import {
  PeerAddressPolicy, TurnClient, TurnServer, connectTcpTransport, openUdpTransport, restCredentials, type TurnServerOptions,
} from '../../src/turn/index.js';
import { TurnError } from '../../src/errors.js';
import { type TransportAddress, AttrType, Method, MessageClass, decodeMessage, encodeMessage, errorCode, getAttribute } from '../../src/wire/index.js';

/**
 * natpunch's TURN server against natpunch's TURN client, on loopback: two clients relaying to
 * each other through their own allocations (the shape peers use), the peer-address policy and
 * the server's own address, quotas, credentials. (coturn's client against this server:
 * interop-uclient.test.ts; this client against coturn: client.test.ts.)
 */

const USERS = new Map([['alice', 'wonderland'], ['bob', 'builder']]);
const SECRET = 'a-rest-secret';

async function server(t: TestContext, options: Partial<TurnServerOptions> = {}, listen = '127.0.0.1'): Promise<{ turn: TurnServer; address: TransportAddress }> {
  const turn = new TurnServer({
    relayAddress: '127.0.0.1', realm: 'natpunch.test', users: USERS, secret: SECRET,
    policy: new PeerAddressPolicy({ allow: ['127.0.0.0/8'], serverAddresses: ['127.0.0.1'] }), ...options,
  });
  const stun = await StunServer.listen({ address: listen, port: 0, shared: turn });
  t.after(async () => {
    await turn.close();
    await stun.close();
  });
  return { turn, address: stun.addresses[0]! };
}

function client(t: TestContext, transport: Awaited<ReturnType<typeof openUdpTransport>> | Awaited<ReturnType<typeof connectTcpTransport>>): TurnClient {
  const c = new TurnClient(transport);
  t.after(() => c.close());
  return c;
}

function nextData(c: TurnClient): Promise<[TransportAddress, Uint8Array]> {
  return new Promise((resolve) => c.once('data', (peer, data) => resolve([peer, Uint8Array.prototype.slice.call(data)])));
}

test('two clients (UDP and TCP) relay to each other through their own allocations on one server, on channels and by Send', { timeout: 60_000 }, async (t) => {
  const { turn, address } = await server(t);
  const a = client(t, await openUdpTransport(address, { localAddress: '127.0.0.1' }));
  const b = client(t, await connectTcpTransport(address, { localAddress: '127.0.0.1' }));
  const ra = await a.allocate({ username: 'alice', password: 'wonderland' });
  const rb = await b.allocate({ username: 'bob', password: 'builder' });
  assert.equal(turn.allocations.size, 2);
  // The relay IP is the server's own address (refused as a peer by the policy) but another live allocation on it is not.
  await a.createPermission([rb.relayed.address]);
  await b.createPermission([ra.relayed.address]);
  // Send indication first, then a channel, each way; odd sizes cover TCP padding.
  for (const useChannel of [false, true]) {
    if (useChannel) {
      await a.bindChannel(rb.relayed);
      await b.bindChannel(ra.relayed);
    }
    for (const size of [1, 333, 1200]) {
      const ab = randomBytes(size);
      const got = nextData(b);
      a.send(rb.relayed, ab);
      const [from, data] = await got;
      assert.deepEqual(from, ra.relayed);
      assert.deepEqual(Buffer.from(data), ab);
      const ba = randomBytes(size);
      const back = nextData(a);
      b.send(ra.relayed, ba);
      assert.deepEqual(Buffer.from((await back)[1]), ba);
    }
  }
  assert.ok(turn.stats.packetsRelayed >= 24);
});

test('between two allocations of one server (handed over without the kernel) the receiver\'s permission still rules: none, nothing arrives', { timeout: 60_000 }, async (t) => {
  const { turn, address } = await server(t);
  const a = client(t, await openUdpTransport(address, { localAddress: '127.0.0.1' }));
  const b = client(t, await openUdpTransport(address, { localAddress: '127.0.0.1' }));
  const ra = await a.allocate({ username: 'alice', password: 'wonderland' });
  const rb = await b.allocate({ username: 'bob', password: 'builder' });
  // a may send to b's relayed address, but b has no permission for the relay IP yet.
  await a.bindChannel(rb.relayed);
  const dropped = turn.stats.packetsDropped;
  let delivered = 0;
  b.on('data', () => { delivered++; });
  a.send(rb.relayed, randomBytes(100));
  // The drop is counted synchronously when the server handles the datagram: wait for that count.
  while (turn.stats.packetsDropped === dropped) await new Promise((resolve) => setImmediate(resolve));
  assert.equal(delivered, 0);
  // With the permission (a channel back to a's relayed address), the same send arrives.
  await b.bindChannel(ra.relayed);
  const got = nextData(b);
  const data = randomBytes(100);
  a.send(rb.relayed, data);
  const [from, bytes] = await got;
  assert.deepEqual(from, ra.relayed);
  assert.deepEqual(Buffer.from(bytes), data);
});

test('a permission for the relay IP opens its live relayed ports only, never another service on the server', { timeout: 60_000 }, async (t) => {
  const { turn, address } = await server(t);
  const service = dgram.createSocket('udp4');
  service.bind(0, '127.0.0.1');
  await once(service, 'listening');
  t.after(() => service.close());
  let leaked = 0;
  service.on('message', () => leaked++);
  const a = client(t, await openUdpTransport(address, { localAddress: '127.0.0.1' }));
  const b = client(t, await openUdpTransport(address, { localAddress: '127.0.0.1' }));
  const ra = await a.allocate({ username: 'alice', password: 'wonderland' });
  const rb = await b.allocate({ username: 'bob', password: 'builder' });
  await a.createPermission([rb.relayed.address]); // 127.0.0.1: the permission now covers the IP
  await b.createPermission([ra.relayed.address]);
  const target = { family: 4 as const, address: '127.0.0.1', port: service.address().port };
  await assert.rejects(a.bindChannel(target), (e: TurnError) => e.status === 403 && /own address/.test(e.reason));
  const before = turn.stats.packetsDropped;
  a.send(target, Buffer.from('to the database'));
  // And a datagram that is allowed, after it: once it has arrived, the refused one would have too.
  const got = nextData(b);
  a.send(rb.relayed, Buffer.from('to the peer'));
  await got;
  assert.equal(leaked, 0);
  assert.equal(turn.stats.packetsDropped, before + 1);
});

test('the default policy refuses internal peers with 403 naming the range; --relay-allow opens one', { timeout: 60_000 }, async (t) => {
  const { address } = await server(t, { policy: new PeerAddressPolicy({ allow: ['10.1.0.0/16'], serverAddresses: ['127.0.0.1'] }) });
  const a = client(t, await openUdpTransport(address, { localAddress: '127.0.0.1' }));
  await a.allocate({ username: 'alice', password: 'wonderland' });
  for (const [ip, name] of [['127.0.0.2', 'loopback'], ['10.0.0.1', 'private'], ['192.168.1.1', 'private'], ['100.64.0.1', 'CGNAT|shared'], ['169.254.1.1', 'link-local'],
    ['0.0.0.0', 'unspecified|this network'], ['224.0.0.1', 'multicast'], ['255.255.255.255', 'broadcast|reserved']] as const) {
    await assert.rejects(a.createPermission([ip]), (e: TurnError) => e.status === 403 && new RegExp(name, 'i').test(e.reason), `${ip} must be refused as ${name}`);
  }
  // The server's own address: a channel to it names a port, which is no live relayed port.
  await assert.rejects(a.bindChannel({ family: 4, address: '127.0.0.1', port: 9 }), (e: TurnError) => e.status === 403 && /own address/.test(e.reason));
  await a.createPermission(['10.1.2.3']); // opened by --relay-allow
  await a.createPermission(['203.0.113.7']); // public (TEST-NET-3, the lab's "internet")
  // All or nothing: one refused address in a request installs none of them (RFC 8656 §9.2).
  await assert.rejects(a.createPermission(['203.0.113.8', '10.0.0.1']), (e: TurnError) => e.status === 403);
});

test('quotas: per user and in all → 486; a freed allocation gives its slot back', { timeout: 60_000 }, async (t) => {
  const { address } = await server(t, { userQuota: 2, totalQuota: 3 });
  const clients = await Promise.all([0, 1, 2, 3, 4].map(async () => client(t, await openUdpTransport(address, { localAddress: '127.0.0.1' }))));
  await clients[0]!.allocate({ username: 'alice', password: 'wonderland' });
  await clients[1]!.allocate({ username: 'alice', password: 'wonderland' });
  await assert.rejects(clients[2]!.allocate({ username: 'alice', password: 'wonderland' }), (e: TurnError) => e.status === 486 && /username/.test(e.reason));
  await clients[3]!.allocate({ username: 'bob', password: 'builder' });
  await assert.rejects(clients[4]!.allocate({ username: 'bob', password: 'builder' }), (e: TurnError) => e.status === 486 && /maximum/.test(e.reason));
  await clients[0]!.close();
  await clients[2]!.allocate({ username: 'alice', password: 'wonderland' });
});

test('credentials: a wrong password, an unknown user and an expired REST username → 401; a fresh REST one works', { timeout: 60_000 }, async (t) => {
  const { address } = await server(t);
  const attempt = async (username: string, password: string): Promise<void> => {
    const c = client(t, await openUdpTransport(address, { localAddress: '127.0.0.1' }));
    await c.allocate({ username, password });
  };
  await assert.rejects(attempt('alice', 'not-it'), (e: TurnError) => e.status === 401);
  await assert.rejects(attempt('mallory', 'anything'), (e: TurnError) => e.status === 401);
  const expired = restCredentials(SECRET, 'peer', 60, Date.now() - 3600_000);
  await assert.rejects(attempt(expired.username, expired.password), (e: TurnError) => e.status === 401);
  const forged = restCredentials('another-secret', 'peer', 600);
  await assert.rejects(attempt(forged.username, forged.password), (e: TurnError) => e.status === 401);
  const fresh = restCredentials(SECRET, 'peer', 600);
  await attempt(fresh.username, fresh.password);
});

test('a TCP client that disconnects takes its allocation with it (RFC 8656 §3.1)', { timeout: 60_000 }, async (t) => {
  const { turn, address } = await server(t);
  const transport = await connectTcpTransport(address, { localAddress: '127.0.0.1' });
  const c = new TurnClient(transport);
  await c.allocate({ username: 'alice', password: 'wonderland' });
  assert.equal(turn.allocations.size, 1);
  const gone = new Promise<void>((resolve) => {
    const poll = setInterval(() => { if (turn.allocations.size === 0) { clearInterval(poll); resolve(); } }, 5);
  });
  transport.close();
  await gone;
  await c.close();
});

/** One raw datagram to the server; resolves with the answer, or undefined when none comes within `ms`. */
async function exchange(t: TestContext, to: TransportAddress, request: Uint8Array, ms = 500): Promise<Uint8Array | undefined> {
  const socket = dgram.createSocket('udp4');
  t.after(() => socket.close());
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  socket.send(request, to.port, to.address);
  const timer = AbortSignal.timeout(ms);
  try {
    const [answer] = await once(socket, 'message', { signal: timer }) as [Buffer];
    return answer;
  } catch {
    return undefined;
  }
}

test('answers to unauthenticated UDP requests are no larger than the request beyond their essential attributes (ERROR-CODE, REALM, NONCE)', { timeout: 60_000 }, async (t) => {
  const { address } = await server(t);
  const transaction = (): Uint8Array => randomBytes(12);
  const requestedTransport = { type: AttrType.RequestedTransport, value: Uint8Array.of(17, 0, 0, 0) };
  // The smallest Allocate (28 bytes), coturn's first Allocate sizes (56 and 60 bytes) and larger ones.
  const sizes: Array<{ software: number; fingerprint: boolean }> = [
    { software: 0, fingerprint: false }, { software: 0, fingerprint: true }, { software: 20, fingerprint: true },
    { software: 40, fingerprint: false }, { software: 120, fingerprint: true },
  ];
  for (const { software, fingerprint } of sizes) {
    const attributes = [requestedTransport, ...(software ? [{ type: AttrType.Software, value: new TextEncoder().encode('x'.repeat(software)) }] : [])];
    const request = encodeMessage({ method: Method.Allocate, messageClass: MessageClass.Request, transactionId: transaction(), attributes }, { fingerprint });
    const answer = await exchange(t, address, request);
    assert.ok(answer, `no answer to a ${request.length}-byte Allocate`);
    const message = decodeMessage(answer);
    assert.equal(errorCode.decode(getAttribute(message, AttrType.ErrorCode)!).code, 401);
    assert.ok(getAttribute(message, AttrType.Realm) && getAttribute(message, AttrType.Nonce), 'a challenge carries REALM and NONCE');
    assert.equal(getAttribute(message, AttrType.Software), undefined, 'no SOFTWARE to an unauthenticated request');
    // The essential answer: ERROR-CODE without its reason phrase, REALM, NONCE, FINGERPRINT if asked.
    const minimum = 20 + 8 + 4 + Math.ceil('natpunch.test'.length / 4) * 4 + 4 + 16 + (fingerprint ? 8 : 0);
    if (request.length < minimum) assert.equal(answer.length, minimum, 'nothing but the essential attributes');
    assert.ok(answer.length <= Math.max(request.length, minimum), `${answer.length}-byte answer to a ${request.length}-byte request (essential ${minimum})`);
    if (request.length >= minimum) assert.ok(answer.length <= request.length);
  }
  // A large request gets the reason phrase back (the room is there).
  const large = encodeMessage({ method: Method.Allocate, messageClass: MessageClass.Request, transactionId: transaction(), attributes: [requestedTransport, { type: AttrType.Software, value: new TextEncoder().encode('y'.repeat(200)) }] });
  const answer = await exchange(t, address, large);
  assert.match(errorCode.decode(getAttribute(decodeMessage(answer!), AttrType.ErrorCode)!).reason, /Unauthenticated/);
});

test('IPv6: clients over UDP and TCP to [::1] get IPv6 relayed addresses, receive from an IPv6 peer and relay to each other', { timeout: 60_000 }, async (t) => {
  const { turn, address } = await server(t, {
    // IPv6 loopback has one address, so the peer shares the server's: the "never the server's
    // own address" rule (tested in IPv4 above) is left out here, or no peer could exist.
    relayAddress: '::1', policy: new PeerAddressPolicy({ allow: ['::1/128'], serverAddresses: [] }),
  }, '::1');
  assert.equal(address.family, 6);
  const peer = dgram.createSocket('udp6');
  peer.bind(0, '::1');
  await once(peer, 'listening');
  t.after(() => peer.close());
  const peerAddress: TransportAddress = { family: 6, address: '::1', port: peer.address().port };
  const a = client(t, await openUdpTransport(address, { localAddress: '::1' }));
  const b = client(t, await connectTcpTransport(address, { localAddress: '::1' }));
  const ra = await a.allocate({ username: 'alice', password: 'wonderland' });
  const rb = await b.allocate({ username: 'bob', password: 'builder' });
  assert.equal(ra.relayed.family, 6);
  assert.equal(ra.relayed.address, '::1');
  assert.equal(rb.relayed.family, 6);
  assert.equal(ra.mapped.family, 6);
  assert.equal(ra.mapped.address, '::1');
  // Into a's relayed socket through the kernel from a plain IPv6 peer, on to a as ChannelData.
  // (The other way cannot be shown here: a relay sends nothing to its own address but its
  // relayed ports, and IPv6 loopback has no second address for the peer.)
  await a.bindChannel(peerAddress);
  const back = nextData(a);
  peer.send(Buffer.from('over v6'), ra.relayed.port, '::1');
  const [backFrom, backData] = await back;
  assert.deepEqual(backFrom, peerAddress);
  assert.equal(Buffer.from(backData).toString(), 'over v6');
  // Between the two allocations (the server hands it over), UDP client to TCP client and back.
  await a.createPermission([rb.relayed.address]);
  await b.createPermission([ra.relayed.address]);
  await a.bindChannel(rb.relayed);
  await b.bindChannel(ra.relayed);
  const got = nextData(b);
  const payload = randomBytes(1200);
  a.send(rb.relayed, payload);
  const [gotFrom, gotData] = await got;
  assert.deepEqual(gotFrom, ra.relayed);
  assert.deepEqual(Buffer.from(gotData), payload);
  const reply = nextData(a);
  b.send(ra.relayed, Buffer.from('reply'));
  assert.deepEqual((await reply)[0], rb.relayed);
  // The policy still rules in IPv6: an IPv4-mapped loopback is refused.
  await assert.rejects(a.bindChannel({ family: 6, address: '::ffff:127.0.0.1', port: 9 }), (e: TurnError) => e.status === 403);
  assert.equal(turn.allocations.size, 2);
});
