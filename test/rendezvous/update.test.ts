import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import type dgram from 'node:dgram';
import { generateIdentity, type Identity } from '../../src/identity/index.js';
import {
  DOMAIN, InMemoryRegistry, RendezvousClient, RendezvousServer, ReflexiveObserver, signObject, parseMessage, encodeMessage, type ParsedMessage,
} from '../../src/rendezvous/index.js';
import { StunServer } from '../../src/stun/server.js';
import { StunUdpClient } from '../../src/stun/udp-client.js';
import { AttrType, formatAddress, reflexiveAddress, username } from '../../src/wire/index.js';
import { RawClient, Resources, udpSocket } from './helpers.js';

// A registered peer whose NAT mapping changed moves its registration to the new address with
// refresh -> challenge -> STUN Binding carrying the challenge's token -> signed update -> updated.
// On loopback a "new mapping" is simply another socket: the server only knows what its STUN port saw.

const resources = new Resources();
let registry: InMemoryRegistry;
let stun: StunServer;
let url: string;

beforeEach(async () => {
  const observer = new ReflexiveObserver();
  registry = new InMemoryRegistry();
  stun = resources.add(await StunServer.listen({ address: '127.0.0.1', port: 0, onBinding: observer.onBinding }), (s) => s.close());
  const server = resources.add(await RendezvousServer.listen({ host: '127.0.0.1', port: 0, stun, observer, registry }), (s) => s.close());
  url = server.url;
});
afterEach(() => resources.close());

/** A STUN Binding with USERNAME = token from `socket`; returns the mapped address it reported. */
async function prove(socket: dgram.Socket, token: string): Promise<string> {
  const client = new StunUdpClient(socket);
  try {
    const response = await client.request(stun.addresses[0]!, { attributes: [{ type: AttrType.Username, value: username.encode(token) }] });
    return formatAddress(reflexiveAddress(response.message)!);
  } finally {
    client.close();
  }
}

/** Registers by hand with a proven srflx from `socket`. */
async function register(identity: Identity = generateIdentity()): Promise<{ raw: RawClient; identity: Identity; srflx: string }> {
  const raw = await RawClient.open(resources, url);
  const hello = await raw.next();
  const srflx = await prove(await udpSocket(resources), hello['token'] as string);
  const signed = signObject(identity, DOMAIN.register, { peerId: identity.peerId, nonce: hello['nonce'], privateEndpoints: ['127.0.0.1:9'], srflx });
  const registered = await raw.ask({ type: 'register', signed });
  assert.equal(registered.type, 'registered', JSON.stringify(registered));
  return { raw, identity, srflx };
}

function update(identity: Identity, nonce: unknown, srflx: string, domain: string = DOMAIN.update): unknown {
  return { type: 'update', signed: signObject(identity, domain as typeof DOMAIN.update, { peerId: identity.peerId, nonce, srflx }) };
}

test('refresh, challenge, update and updated validate and survive encode -> parse', () => {
  const nonce = 'AAAAAAAAAAAAAAAAAAAAAA';
  const messages: ParsedMessage[] = [
    { type: 'refresh', id: 1 },
    { type: 'challenge', id: 1, nonce, token: nonce },
    { type: 'update', id: 2, signed: signObject(generateIdentity(), DOMAIN.update, {}) },
    { type: 'updated', id: 2, srflx: '198.51.100.2:4000' },
  ];
  for (const message of messages) assert.deepEqual(parseMessage(encodeMessage(message)), message, message.type);
  assert.throws(() => parseMessage('{"type":"updated","id":2,"srflx":"0.0.0.0:4000"}'), /updated\.srflx/);
});

test('a registered peer moves its registration to the address its new mapping proved', async () => {
  const { raw, identity, srflx } = await register();
  const challenge = await raw.ask({ type: 'refresh' });
  assert.equal(challenge.type, 'challenge');
  const moved = await prove(await udpSocket(resources), challenge['token'] as string);
  assert.notEqual(moved, srflx);
  const updated = await raw.ask(update(identity, challenge['nonce'], moved));
  assert.deepEqual(updated, { type: 'updated', id: raw.lastId, srflx: moved });
  assert.equal((await registry.lookup(identity.peerId))?.srflx, moved);
});

test('an update is refused unless it claims exactly what the STUN port saw carrying the challenge token', async () => {
  const { raw, identity, srflx } = await register();
  // The Binding came from one socket, the claim names another address.
  let challenge = await raw.ask({ type: 'refresh' });
  await prove(await udpSocket(resources), challenge['token'] as string);
  let answer = await raw.ask(update(identity, challenge['nonce'], '127.0.0.1:9'));
  assert.equal(answer.type, 'error');
  assert.equal(answer['code'], 'srflx-mismatch');
  assert.match(answer['message'] as string, /update\.signed\.body\.srflx: claimed 127\.0\.0\.1:9, but/);
  // The old registration token does not prove anything any more; the new one was never used.
  challenge = await raw.ask({ type: 'refresh' });
  answer = await raw.ask(update(identity, challenge['nonce'], srflx));
  assert.equal(answer['code'], 'srflx-unproven');
  assert.equal((await registry.lookup(identity.peerId))?.srflx, srflx);
});

test('an update needs this socket\'s outstanding challenge nonce, once, and the registered peer\'s signature', async () => {
  const { raw, identity, srflx } = await register();
  // No challenge yet.
  let answer = await raw.ask(update(identity, 'AAAAAAAAAAAAAAAAAAAAAA', srflx));
  assert.equal(answer['code'], 'bad-nonce');
  const challenge = await raw.ask({ type: 'refresh' });
  const moved = await prove(await udpSocket(resources), challenge['token'] as string);
  // Signed by someone else, or for another purpose.
  answer = await raw.ask(update(generateIdentity(), challenge['nonce'], moved));
  assert.equal(answer['code'], 'bad-signature');
  answer = await raw.ask(update(identity, challenge['nonce'], moved, DOMAIN.register));
  assert.equal(answer['code'], 'bad-signature');
  // A wrong nonce uses the challenge up: the right one is refused after it.
  answer = await raw.ask(update(identity, 'AAAAAAAAAAAAAAAAAAAAAQ', moved));
  assert.equal(answer['code'], 'bad-nonce');
  answer = await raw.ask(update(identity, challenge['nonce'], moved));
  assert.equal(answer['code'], 'bad-nonce');
  assert.equal((await registry.lookup(identity.peerId))?.srflx, srflx);
});

test('a replayed update is refused: each challenge nonce proves one move', async () => {
  const { raw, identity } = await register();
  const challenge = await raw.ask({ type: 'refresh' });
  const moved = await prove(await udpSocket(resources), challenge['token'] as string);
  const message = update(identity, challenge['nonce'], moved);
  assert.equal((await raw.ask(message)).type, 'updated');
  const again = await raw.ask(message);
  assert.equal(again['code'], 'bad-nonce');
});

test('refresh and update before registering get not-registered', async () => {
  const raw = await RawClient.open(resources, url);
  await raw.next();
  assert.equal((await raw.ask({ type: 'refresh' }))['code'], 'not-registered');
  assert.equal((await raw.ask(update(generateIdentity(), 'AAAAAAAAAAAAAAAAAAAAAA', '127.0.0.1:9')))['code'], 'not-registered');
});

test('RendezvousClient.updateSrflx proves the socket\'s current mapping and signs it into later intents', async () => {
  const socket = await udpSocket(resources);
  const identity = generateIdentity();
  const client = resources.add(await RendezvousClient.connect({ url, identity, udpSocket: socket, privateEndpoints: [`127.0.0.1:${socket.address().port}`] }), (c) => c.close());
  const before = client.srflx;
  const [a, b] = await Promise.all([client.updateSrflx(), client.updateSrflx()]);
  assert.equal(a, before);
  assert.equal(b, a);
  assert.equal((await registry.lookup(identity.peerId))?.srflx, before);
  client.close();
  await assert.rejects(client.updateSrflx(), (error: Error & { reason?: string }) => error.reason === 'closed');
});
