import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { once } from '../support/wait.js';
import { generateIdentity } from '../../src/identity/index.js';
import {
  type PunchInstruction, type TrickledCandidates, InMemoryRegistry, RendezvousError, RendezvousServer, ReflexiveObserver,
} from '../../src/rendezvous/index.js';
import { InMemorySignalBus } from '../../src/rendezvous/signal-bus.js';
import { StunServer } from '../../src/stun/server.js';
import { Resources, registerRaw, startPeer, until } from './helpers.js';

/**
 * Two rendezvous nodes sharing one registry and a signal bus (in memory here; Redis in
 * test/server/redis-nodes.test.ts): connect, accept, refuse, trickle and every failure path work
 * when the initiator and the target are registered on different nodes.
 */

const resources = new Resources();
afterEach(() => resources.close());

async function node(registry: InMemoryRegistry, bus: InMemorySignalBus): Promise<{ server: RendezvousServer; url: string }> {
  const observer = new ReflexiveObserver();
  const stun = resources.add(await StunServer.listen({ address: '127.0.0.1', port: 0, onBinding: observer.onBinding }), (s) => s.close());
  const server = resources.add(await RendezvousServer.listen({ host: '127.0.0.1', port: 0, stun, observer, registry, bus }), (s) => s.close());
  return { server, url: server.url };
}

async function twoNodes() {
  const registry = new InMemoryRegistry();
  const bus1 = new InMemorySignalBus('node-1');
  const one = await node(registry, bus1);
  const two = await node(registry, bus1.peer('node-2'));
  return { registry, one, two };
}

test('a peer on node 1 connects to a peer on node 2: both get the one punch, opposite roles, one key', async () => {
  const { one, two } = await twoNodes();
  const a = await startPeer(resources, one.url);
  const b = await startPeer(resources, two.url);
  const incoming = once(b.client, 'punch') as Promise<[PunchInstruction]>;
  const initiator = await a.client.connect(b.identity.peerId);
  const [target] = await incoming;
  assert.equal(initiator.session, target.session);
  assert.equal(initiator.peer, b.identity.peerId);
  assert.equal(target.peer, a.identity.peerId);
  assert.equal(initiator.role, 'controlling');
  assert.equal(target.role, 'controlled');
  assert.deepEqual(initiator.key, target.key);
  assert.deepEqual(initiator.localCandidates, target.remoteCandidates, 'each side got the other\'s signed candidates');
  assert.deepEqual(target.localCandidates, initiator.remoteCandidates);
  assert.equal(two.server.stats.punches, 1, 'the target\'s node paired them');
  assert.equal(one.server.stats.sessions, 0, 'no pending session left on either node');
  assert.equal(two.server.stats.sessions, 0);
  // And the other way round.
  const back = once(a.client, 'punch') as Promise<[PunchInstruction]>;
  const reverse = await b.client.connect(a.identity.peerId);
  assert.equal((await back)[0].session, reverse.session);
});

test('trickled candidates cross nodes, to the other peer of the session only', async () => {
  const { one, two } = await twoNodes();
  const a = await startPeer(resources, one.url);
  const b = await startPeer(resources, two.url);
  const incoming = once(b.client, 'punch') as Promise<[PunchInstruction]>;
  const { session } = await a.client.connect(b.identity.peerId);
  await incoming;
  const mapped = { type: 'mapped' as const, transport: 'udp' as const, address: { family: 4 as const, address: '198.51.100.20', port: 40_000 } };
  const toA = once(a.client, 'candidates') as Promise<[TrickledCandidates]>;
  await b.client.trickle(session, [mapped]);
  const [batch] = await toA;
  assert.equal(batch.peer, b.identity.peerId);
  assert.deepEqual(batch.candidates.map((c) => c.address), [mapped.address]);
  const toB = once(b.client, 'candidates') as Promise<[TrickledCandidates]>;
  await a.client.trickle(session, [mapped], { end: true });
  assert.equal((await toB)[0].end, true);
  assert.equal(one.server.stats.trickled + two.server.stats.trickled, 2);
});

test('a refusal on node 2 reaches the initiator on node 1', async () => {
  const { one, two } = await twoNodes();
  const a = await startPeer(resources, one.url);
  const b = await startPeer(resources, two.url, { accept: () => false });
  const error = await a.client.connect(b.identity.peerId).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof RendezvousError);
  assert.equal(error.reason, 'refused');
  await until(() => one.server.stats.sessions === 0 && two.server.stats.sessions === 0, 'both nodes forgetting the session');
});

test('a target that disconnects before answering: the initiator on the other node hears peer-not-found at once', async () => {
  const { one, two } = await twoNodes();
  const a = await startPeer(resources, one.url);
  const { raw, identity } = await registerRaw(resources, two.url);
  const result = a.client.connect(identity.peerId, { timeoutMs: 30_000 });
  assert.equal((await raw.next()).type, 'incoming');
  raw.ws.terminate();
  await assert.rejects(result, (e: unknown) => e instanceof RendezvousError && e.reason === 'peer-not-found');
  assert.equal(one.server.stats.sessions, 0);
});

test('an initiator that disconnects: the target\'s node drops its copy of the session', async () => {
  const { one, two } = await twoNodes();
  const a = await startPeer(resources, one.url);
  const { raw, identity } = await registerRaw(resources, two.url);
  void a.client.connect(identity.peerId, { timeoutMs: 30_000 }).catch(() => undefined);
  assert.equal((await raw.next()).type, 'incoming');
  assert.equal(two.server.stats.sessions, 1);
  a.client.close();
  await until(() => two.server.stats.sessions === 0, 'node 2 dropping the session');
});

test('a peer registered on a node that is gone: peer-not-found at once, not a timeout', async () => {
  const { registry, one } = await twoNodes();
  const a = await startPeer(resources, one.url);
  const ghost = generateIdentity();
  // What a node killed a moment ago leaves behind until its entries expire.
  await registry.register({ peerId: ghost.peerId, connectionId: 'node-9:x:1', node: 'node-9', srflx: null, privateEndpoints: [], registeredAt: Date.now(), version: 2, capabilities: [] });
  const started = Date.now();
  await assert.rejects(a.client.connect(ghost.peerId, { timeoutMs: 30_000 }), (e: unknown) => {
    assert.ok(e instanceof RendezvousError && e.reason === 'peer-not-found');
    assert.match(e.message, /node node-9, which does not answer/);
    return true;
  });
  assert.ok(Date.now() - started < 5_000);
});

test('registering again on another node replaces the registration there: the old socket is told "replaced"', async () => {
  const { registry, one, two } = await twoNodes();
  const identity = generateIdentity();
  const first = await startPeer(resources, one.url, { identity });
  const closed = once(first.client, 'close') as Promise<[RendezvousError]>;
  await startPeer(resources, two.url, { identity });
  assert.equal((await closed)[0].reason, 'replaced');
  assert.equal((await registry.lookup(identity.peerId))?.node, 'node-2');
  await until(() => one.server.stats.peers === 0, 'node 1 letting the old socket go');
});

test('a node shutting down tells its peers to move: "shutdown", then the socket closes', async () => {
  const { one } = await twoNodes();
  const a = await startPeer(resources, one.url);
  const closed = once(a.client, 'close') as Promise<[RendezvousError]>;
  await one.server.close({ graceMs: 5_000 });
  assert.equal((await closed)[0].reason, 'shutdown');
});

test('a registry that fails (Redis away) is refused as "server-full", which clients retry, not "invalid"', async () => {
  const registry = new InMemoryRegistry();
  const { url } = await node(registry, new InMemorySignalBus('node-1'));
  const a = await startPeer(resources, url);
  registry.lookup = async () => { throw new Error('connection lost'); };
  await assert.rejects(a.client.connect(generateIdentity().peerId), (e: unknown) => {
    assert.ok(e instanceof RendezvousError);
    assert.equal(e.reason, 'server-full');
    assert.match(e.message, /registry is unavailable \(connection lost\)/);
    return true;
  });
});
