/**
 * Issue 11 finding 5, the listener's side: a real listener accepted 691 attacker intents in
 * 30 s, each a punch of up to 10 s. A peer now bounds the incoming connections it sets up at
 * once and the attempts one initiator may start per minute, refusing the excess with a coded
 * reason the initiator sees (RefusedError kind busy / rate-limited).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NatpunchServer } from '../../src/server/natpunch-server.js';
import { type Peer, type RefusedInfo, createPeer, generateIdentity, RefusedError } from '../../src/index.js';
import { RendezvousError } from '../../src/rendezvous/index.js';
import { Resources, startPeer } from '../rendezvous/helpers.js';

async function setUp(resources: Resources, options: Parameters<typeof createPeer>[0] extends infer O ? Partial<O> : never): Promise<{ url: string; listener: Peer; refused: RefusedInfo[] }> {
  const server = resources.add(await NatpunchServer.listen({ address: '127.0.0.1', port: 0, httpPort: 0, relay: { builtIn: false } }), (s) => s.close());
  const url = server.rendezvousUrl!;
  const listener = resources.add(await createPeer({ server: url, identity: generateIdentity(), bindAddress: '127.0.0.1', reconnect: false, ...options }), (p) => p.close());
  const refused: RefusedInfo[] = [];
  listener.on('refused', (info: RefusedInfo) => refused.push(info));
  return { url, listener, refused };
}

test('a listener sets up at most incoming.maxConcurrent connections at once; the next initiator is told it is busy', { timeout: 60_000 }, async () => {
  const resources = new Resources();
  try {
    const { url, listener, refused } = await setUp(resources, { incoming: { maxConcurrent: 1 } });
    // An initiator that takes its punch and never punches: the listener's side runs until its checks time out.
    const silent = await startPeer(resources, url);
    const instruction = await silent.client.connect(listener.peerId, { timeoutMs: 10_000 });
    assert.equal(instruction.peer, listener.peerId);
    const other = resources.add(await createPeer({ server: url, identity: generateIdentity(), bindAddress: '127.0.0.1', reconnect: false }), (p) => p.close());
    await assert.rejects(other.connect(listener.peerId, { transport: 'udp' }), (error: unknown) => {
      assert.ok(error instanceof RefusedError, String(error));
      assert.equal(error.kind, 'busy');
      assert.match(error.message, /refused the connection: busy: 1 incoming connections are being set up \(at most 1\); try again in a few seconds$/);
      return true;
    });
    assert.deepEqual(refused.map((r) => [r.peerId, r.reason.split(':')[0]]), [[other.peerId, 'busy']]);
  } finally {
    await resources.close();
  }
});

test('one initiator may start incoming.burst attempts, then incoming.perMinute; the excess is rate-limited', { timeout: 60_000 }, async () => {
  const resources = new Resources();
  try {
    const { url, listener, refused } = await setUp(resources, { incoming: { perMinute: 1, burst: 2 } });
    const initiator = await startPeer(resources, url);
    for (let i = 0; i < 2; i++) assert.equal((await initiator.client.connect(listener.peerId, { timeoutMs: 10_000 })).peer, listener.peerId);
    await assert.rejects(initiator.client.connect(listener.peerId, { timeoutMs: 10_000 }), (error: unknown) => {
      assert.ok(error instanceof RendezvousError);
      assert.equal(error.reason, 'refused');
      assert.match(error.message, /rate-limited: more than 1 connection attempts per minute \(burst 2\) from this peer; try again in \d+ s$/);
      return true;
    });
    // Another initiator has its own bucket.
    const second = await startPeer(resources, url);
    assert.equal((await second.client.connect(listener.peerId, { timeoutMs: 10_000 })).peer, listener.peerId);
    assert.deepEqual(refused.map((r) => r.peerId), [initiator.identity.peerId]);
  } finally {
    await resources.close();
  }
});

test('the allow-list still comes first: a stranger is refused as not allowed, spending no tokens', { timeout: 60_000 }, async () => {
  const resources = new Resources();
  try {
    const friend = generateIdentity();
    const { url, listener } = await setUp(resources, { allow: [friend.peerId], incoming: { perMinute: 1, burst: 1 } });
    const stranger = await startPeer(resources, url);
    for (let i = 0; i < 3; i++) {
      await assert.rejects(stranger.client.connect(listener.peerId, { timeoutMs: 10_000 }), /not on its allow-list$/);
    }
    const allowed = await startPeer(resources, url, { identity: friend });
    assert.equal((await allowed.client.connect(listener.peerId, { timeoutMs: 10_000 })).peer, listener.peerId);
  } finally {
    await resources.close();
  }
});
