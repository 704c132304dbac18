import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { once } from '../support/wait.js';
import fc from 'fast-check';
import { WebSocket } from 'ws';
import { generateIdentity, isPeerId } from '../../src/identity/index.js';
import { type PunchInstruction, DOMAIN, RendezvousError, signObject } from '../../src/rendezvous/index.js';
import { RawClient, Resources, registerRaw, startPeer, startServers, token, until } from './helpers.js';

const resources = new Resources();
afterEach(() => resources.close());

async function helloed(url: string): Promise<RawClient> {
  const raw = await RawClient.open(resources, url);
  assert.equal((await raw.next()).type, 'hello');
  return raw;
}

test('malformed, oversized, binary and mistyped messages get error replies and the socket stays up', async () => {
  const { url } = await startServers(resources);
  const raw = await helloed(url);
  const cases: [string, unknown, string, RegExp][] = [
    ['not JSON', '{"type": "register",', 'bad-json', /^message: not JSON/],
    ['JSON but not an object', '[1,2,3]', 'invalid', /^message: expected an object, got an array of 3$/],
    ['no type', { signed: {} }, 'invalid', /^message\.type: expected a string, got undefined$/],
    ['unknown type', { type: 'relay-allocate' }, 'unknown-type', /unknown type "relay-allocate"/],
    ['a server-to-peer type', { type: 'hello', version: 1, nonce: token(), token: token(), stun: [], serverTime: 0 }, 'unknown-type', /sent by the server/],
    ['a wrong field type', { type: 'register', signed: 5 }, 'invalid', /^register\.signed: expected an object, got the number 5$/],
    ['a short signature', { type: 'register', signed: { body: 'e30=', sig: 'AAAA' } }, 'invalid', /^register\.signed\.sig: expected base64 of 64 bytes, got a string of 4 characters$/],
    ['non-canonical base64', { type: 'register', signed: { body: 'e31=', sig: Buffer.alloc(64).toString('base64') } }, 'invalid', /^register\.signed\.body: expected base64/],
    ['too large', JSON.stringify({ type: 'register', pad: 'x'.repeat(20_000) }), 'too-large', /^message: \d+ bytes, at most 16384$/],
  ];
  for (const [what, message, code, text] of cases) {
    const reply = await raw.ask(message);
    assert.equal(reply.type, 'error', what);
    assert.equal(reply['code'], code, what);
    assert.match(String(reply['message']), text, what);
  }
  raw.ws.send(Buffer.from('{"type":"register"}'), { binary: true });
  assert.deepEqual([(await raw.next())['code']], ['invalid']);
  // Still the same socket, and it can still register.
  const identity = generateIdentity();
  const raw2 = await RawClient.open(resources, url);
  const hello = await raw2.next();
  const reply = await raw2.ask({ type: 'register', signed: signObject(identity, DOMAIN.register, { peerId: identity.peerId, nonce: hello['nonce'], privateEndpoints: [], srflx: null }) });
  assert.equal(reply.type, 'registered');
  assert.equal(raw.ws.readyState, WebSocket.OPEN);
});

test('a signed body with bad fields is named by its path', async () => {
  const { url } = await startServers(resources);
  const raw = await helloed(url);
  const identity = generateIdentity();
  const body = (fields: Record<string, unknown>) => signObject(identity, DOMAIN.register, { peerId: identity.peerId, nonce: token(), privateEndpoints: [], srflx: null, ...fields });
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ privateEndpoints: ['10.0.0.1'] }, /^register\.signed\.body\.privateEndpoints\[0\]: expected a unicast "ip:port" endpoint/],
    [{ privateEndpoints: Array.from({ length: 17 }, (_, i) => `10.0.0.1:${i + 1}`) }, /^register\.signed\.body\.privateEndpoints: expected an array of 0-16 items, got an array of 17$/],
    [{ srflx: '0.0.0.0:5' }, /^register\.signed\.body\.srflx: expected a unicast "ip:port" endpoint, not unspecified/],
    [{ srflx: '127.000.0.1:5' }, /^register\.signed\.body\.srflx: expected a unicast "ip:port" endpoint/],
    [{ peerId: 'abc' }, /^register\.signed\.body\.peerId: expected a peer id/],
  ];
  for (const [fields, text] of cases) {
    const reply = await raw.ask({ type: 'register', signed: body(fields) });
    assert.equal(reply['code'], 'invalid', JSON.stringify(fields));
    assert.match(String(reply['message']), text);
  }
});

test('frames beyond the WebSocket payload limit close the socket (1009), and the server stays up', async () => {
  const { url } = await startServers(resources);
  const raw = await helloed(url);
  raw.send('x'.repeat(70_000));
  assert.equal(await raw.closed, 1009);
  await startPeer(resources, url);
});

test('5000 random messages each get an error reply, and the server keeps serving', async () => {
  // helloTimeoutMs: on a loaded machine the 5000 round trips can take longer than the default 10 s.
  const { url, server } = await startServers(resources, { limits: { messagesPerSecond: 1e6, messageBurst: 1e6, errorBurst: 1e6, maxQueuedMessages: 1e6, helloTimeoutMs: 120_000 } });
  const raw = await helloed(url);
  const types = ['register', 'connect', 'accept', 'refuse', 'hello', 'punch', 'error', 'incoming', 'registered', '__proto__', 'constructor', ''];
  const message = fc.oneof(
    fc.jsonValue(),
    fc.record({ type: fc.constantFrom(...types) }, { requiredKeys: ['type'] }).chain((base) =>
      fc.dictionary(fc.constantFrom('signed', 'intent', 'accept', 'session', 'reason', 'body', 'sig', 'type', '__proto__'), fc.jsonValue()).map((extra) => ({ ...extra, ...base }))),
    fc.record({ type: fc.constant('refuse'), session: fc.string(), reason: fc.string() }),
    fc.record({ type: fc.constantFrom('register', 'connect', 'accept'), signed: fc.record({ body: fc.base64String(), sig: fc.base64String() }), intent: fc.record({ body: fc.base64String(), sig: fc.base64String() }), accept: fc.record({ body: fc.base64String(), sig: fc.base64String() }) }),
    fc.string({ unit: 'binary' }),
  );
  const samples = fc.sample(message, { numRuns: 5000, seed: 20261122 });
  const codes = new Map<string, number>();
  for (let i = 0; i < samples.length; i += 250) {
    const batch = samples.slice(i, i + 250);
    for (const m of batch) raw.send(typeof m === 'string' ? m : JSON.stringify(m));
    for (let j = 0; j < batch.length; j++) {
      const reply = await raw.next();
      assert.equal(reply.type, 'error', `message ${i + j}: ${JSON.stringify(batch[j]).slice(0, 200)}`);
      codes.set(String(reply['code']), (codes.get(String(reply['code'])) ?? 0) + 1);
    }
  }
  assert.ok(codes.size >= 3, `varied errors: ${JSON.stringify([...codes])}`);
  assert.equal(raw.ws.readyState, WebSocket.OPEN);
  const a = await startPeer(resources, url);
  const b = await startPeer(resources, url);
  const punched = once(b.client, 'punch') as Promise<[PunchInstruction]>;
  await a.client.connect(b.identity.peerId);
  await punched;
  assert.equal(server.stats.errors, 5000);
});

test('a socket over its message rate gets "rate-limited" replies', async () => {
  const { url, server } = await startServers(resources, { limits: { messagesPerSecond: 0.001, messageBurst: 3 } });
  const raw = await helloed(url);
  for (let i = 0; i < 5; i++) raw.send({ type: 'refuse', session: token(), reason: '' });
  const codes = [];
  for (let i = 0; i < 5; i++) codes.push((await raw.next())['code']);
  assert.deepEqual(codes, ['not-registered', 'not-registered', 'not-registered', 'rate-limited', 'rate-limited']);
  assert.equal(server.stats.rateLimited, 2);
});

test('a socket that keeps causing errors is closed with 1008', async () => {
  const { url } = await startServers(resources, { limits: { errorBurst: 3 } });
  const raw = await helloed(url);
  for (let i = 0; i < 10; i++) raw.send('nope');
  assert.equal(await raw.closed, 1008);
});

test('a socket that does not register in time is told and closed', async () => {
  const { url, server, observer } = await startServers(resources, { limits: { helloTimeoutMs: 100 } });
  const raw = await helloed(url);
  assert.equal((await raw.next())['code'], 'registration-timeout');
  assert.equal(await raw.closed, 1008);
  await until(() => server.stats.connections === 0, 'the server dropped the socket');
  assert.equal(observer.size, 0, 'its STUN token is forgotten');
});

test('a socket that answers no pings is dropped', async () => {
  const { url, server } = await startServers(resources, { limits: { pingIntervalMs: 40, idleTimeoutMs: 120 } });
  const ws = new WebSocket(url, { autoPong: false });
  resources.add(ws, (w) => w.terminate());
  ws.on('error', () => undefined);
  const [code] = await once(ws, 'close') as [number];
  assert.equal(code, 1006, 'terminated without a close frame');
  await until(() => server.stats.connections === 0, 'the server dropped the socket');
});

test('connections beyond maxConnections, or per address, are refused at the upgrade with 503', async () => {
  for (const limits of [{ maxConnections: 1 }, { maxConnectionsPerAddress: 1 }]) {
    const { url } = await startServers(resources, { limits });
    await helloed(url);
    const ws = new WebSocket(url);
    const [error] = await once(ws, 'error') as [Error];
    assert.match(error.message, /503/);
  }
});

test('plain HTTP and other paths are not the WebSocket endpoint', async () => {
  const { url } = await startServers(resources);
  const response = await fetch(url.replace('ws:', 'http:'));
  assert.equal(response.status, 426);
  await response.arrayBuffer();
  const ws = new WebSocket(`${url}elsewhere`);
  const [error] = await once(ws, 'error') as [Error];
  assert.match(error.message, /404/);
});

test('a peer may have only maxPendingIntents sessions pending', async () => {
  const { url } = await startServers(resources, { limits: { maxPendingIntents: 2 } });
  const { raw, identity } = await registerRaw(resources, url);
  // Three targets: one pair may hold only maxPendingPerPair (1) sessions (pending-fairness.test.ts).
  const targets = await Promise.all([0, 1, 2].map(() => registerRaw(resources, url)));
  const connect = (to: string) => raw.send({ type: 'connect', intent: signObject(identity, DOMAIN.intent, {
    from: identity.peerId, to, nonce: token(), expires: Date.now() + 10_000, candidates: [], session: token(),
  }) });
  connect(targets[0]!.identity.peerId);
  connect(targets[1]!.identity.peerId);
  assert.equal((await targets[0]!.raw.next()).type, 'incoming');
  assert.equal((await targets[1]!.raw.next()).type, 'incoming');
  connect(targets[2]!.identity.peerId);
  const reply = await raw.next();
  assert.equal(reply['code'], 'too-many-pending');
  assert.equal(typeof reply['ref'], 'string');
});

test('a session id already pending is refused', async () => {
  const { url } = await startServers(resources);
  const { raw, identity } = await registerRaw(resources, url);
  const { raw: target, identity: targetId } = await registerRaw(resources, url);
  const session = token();
  const intent = () => signObject(identity, DOMAIN.intent, {
    from: identity.peerId, to: targetId.peerId, nonce: token(), expires: Date.now() + 10_000, candidates: [], session,
  });
  raw.send({ type: 'connect', intent: intent() });
  assert.equal((await target.next()).type, 'incoming');
  assert.deepEqual([(await raw.ask({ type: 'connect', intent: intent() }))['code']], ['session-in-use']);
});

test('an intent to an id with a typo is refused as peer-not-found, saying the id has a typo', async () => {
  // The schema checks an intent's ids by spelling only (the checksum of an id that names nobody
  // registered is read only to word the refusal): a correct id and one with two letters swapped.
  const { url } = await startServers(resources);
  const { raw, identity } = await registerRaw(resources, url);
  const absent = generateIdentity().peerId;
  const swapped = (k: number) => absent.slice(0, k - 1) + absent[k] + absent[k - 1] + absent.slice(k + 1);
  const typo = [...absent.slice(1)].map((_, k) => swapped(k + 1)).find((id) => !isPeerId(id))!;
  const connect = (to: string) => raw.ask({ type: 'connect', intent: signObject(identity, DOMAIN.intent, {
    from: identity.peerId, to, nonce: token(), expires: Date.now() + 10_000, candidates: [], session: token(),
  }) });
  const unknown = await connect(absent);
  assert.equal(unknown['code'], 'peer-not-found');
  assert.doesNotMatch(String(unknown['message']), /typo/);
  const mistyped = await connect(typo);
  assert.equal(mistyped['code'], 'peer-not-found');
  assert.match(String(mistyped['message']), /checksum does not match, the id has a typo/);
  assert.equal((await connect(absent.toUpperCase()))['code'], 'invalid');
});

test('all per-client state goes when clients leave, and close() ends every client', async () => {
  const { url, server, observer } = await startServers(resources);
  const a = await startPeer(resources, url);
  const b = await startPeer(resources, url, { accept: () => new Promise(() => undefined) }); // never decides
  const pending = a.client.connect(b.identity.peerId).catch((e: unknown) => e);
  await until(() => server.stats.sessions === 1, 'the session is pending');
  b.client.close();
  assert.equal(((await pending) as RendezvousError).reason, 'peer-not-found');
  const closed = once(a.client, 'close') as Promise<[RendezvousError]>;
  await server.close();
  assert.equal((await closed)[0].reason, 'shutdown');
  assert.deepEqual({ ...server.stats, messages: 0, errors: 0 }, { connections: 0, peers: 0, sessions: 0, trickleSessions: 0, messages: 0, errors: 0, rateLimited: 0, punches: 0, refused: 0, trickled: 0 });
  assert.equal(observer.size, 0);
});
