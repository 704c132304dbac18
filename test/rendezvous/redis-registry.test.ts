import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectRedis, type RedisConnection } from '../../src/rendezvous/redis-client.js';
import { RedisRegistry } from '../../src/rendezvous/redis-registry.js';
import { RedisSignalBus } from '../../src/rendezvous/redis-signal-bus.js';
import type { PeerRecord } from '../../src/rendezvous/registry.js';
import { NatpunchError } from '../../src/errors.js';
import { skipUnlessInstalled } from '../support/process.js';
import { type TestRedis, startRedis } from '../support/redis-server.js';
import { until } from '../support/wait.js';

/**
 * The Redis registry and signal bus against a real redis-server: two "nodes" are two registries
 * on two connections, as two `natpunch serve` processes would be.
 */

const record = (peerId: string, connectionId: string, node: string): PeerRecord => ({
  peerId, connectionId, node, srflx: '203.0.113.7:40001', privateEndpoints: ['10.0.0.2:40001'], registeredAt: 1_700_000_000_000,
  version: 2, capabilities: ['trickle'],
});

/** Polls `probe` every 20 ms until it returns true; resolves with the ms it took, rejects after `timeoutMs`. */
async function eventually(probe: () => Promise<boolean>, what: string, timeoutMs = 5_000): Promise<number> {
  const started = Date.now();
  while (!(await probe())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return Date.now() - started;
}

interface Node {
  client: RedisConnection;
  registry: RedisRegistry;
}

async function withRedis(t: import('node:test').TestContext, body: (redis: TestRedis, node: (ttlMs?: number) => Promise<Node>) => Promise<void>): Promise<void> {
  if (skipUnlessInstalled(t, ['redis-server'], 'apt-get install redis-server')) return;
  const redis = await startRedis();
  const nodes: Node[] = [];
  try {
    await body(redis, async (ttlMs = 10_000) => {
      const client = await connectRedis({ url: redis.url });
      const node = { client, registry: new RedisRegistry({ client, ttlMs, prefix: redis.prefix }) };
      nodes.push(node);
      return node;
    });
  } finally {
    for (const node of nodes) {
      await node.registry.close();
      node.client.destroy();
    }
    await redis.stop();
  }
}

test('a registration made on one node is found, whole, from another', async (t) => {
  await withRedis(t, async (_redis, node) => {
    const [a, b] = [await node(), await node()];
    assert.equal(await a.registry.register(record('peer-1', 'a:1', 'a')), undefined);
    assert.deepEqual(await b.registry.lookup('peer-1'), record('peer-1', 'a:1', 'a'));
    assert.equal(await b.registry.lookup('peer-2'), undefined);
    assert.equal(await a.registry.size(), 1, 'size counts what this node holds');
    assert.equal(await b.registry.size(), 0);
  });
});

test('the newer registration wins, and each one replaced is handed back exactly once (atomic replace)', async (t) => {
  await withRedis(t, async (_redis, node) => {
    const [a, b] = [await node(), await node()];
    assert.equal(await a.registry.register(record('peer-1', 'a:1', 'a')), undefined);
    const replaced = await b.registry.register(record('peer-1', 'b:1', 'b'));
    assert.equal(replaced?.connectionId, 'a:1');
    assert.equal((await a.registry.lookup('peer-1'))?.connectionId, 'b:1');
    // 40 registrations of one id from two nodes at once: were the read and the write two steps,
    // two of them could hand back the same previous entry and one would be lost.
    const ids = Array.from({ length: 40 }, (_, i) => `${i % 2 ? 'a' : 'b'}:race-${i}`);
    const previous = await Promise.all(ids.map((id, i) => (i % 2 ? a : b).registry.register(record('peer-1', id, id.split(':')[0]!))));
    const final = (await a.registry.lookup('peer-1'))!.connectionId;
    const handedBack = previous.map((p) => p!.connectionId);
    assert.equal(new Set(handedBack).size, handedBack.length, 'no entry handed back twice');
    assert.deepEqual([...handedBack, final].sort(), ['b:1', ...ids].sort(), 'every entry but the last was replaced exactly once');
  });
});

test('only the registration\'s owner can remove it', async (t) => {
  await withRedis(t, async (_redis, node) => {
    const [a, b] = [await node(), await node()];
    await a.registry.register(record('peer-1', 'a:1', 'a'));
    await b.registry.register(record('peer-1', 'b:1', 'b'));
    assert.equal(await a.registry.unregister('peer-1', 'a:1'), false, 'the replaced socket closing does not remove the newer entry');
    assert.equal((await b.registry.lookup('peer-1'))?.connectionId, 'b:1');
    assert.equal(await b.registry.unregister('peer-1', 'b:1'), true);
    assert.equal(await a.registry.lookup('peer-1'), undefined);
    assert.equal(await b.registry.unregister('peer-1', 'b:1'), false, 'nothing left to remove');
  });
});

test('an entry lives while its node refreshes it and expires within the TTL once the node stops', async (t) => {
  await withRedis(t, async (redis, node) => {
    const ttlMs = 600;
    const [a, b] = [await node(ttlMs), await node(ttlMs)];
    await a.registry.register(record('peer-1', 'a:1', 'a'));
    const pttl = await a.client.sendCommand<number>(['PTTL', `${redis.prefix}peer:peer-1`]);
    assert.ok(pttl > 0 && pttl <= ttlMs, `the key carries the TTL (${pttl} ms)`);
    // Three TTLs: without the refresh (every ttl/3) it would have expired twice over.
    const started = Date.now();
    await until(() => Date.now() - started > 3 * ttlMs, 'three TTLs passing', { intervalMs: 50 });
    assert.equal((await b.registry.lookup('peer-1'))?.connectionId, 'a:1', 'still there while node a refreshes it');
    // Node a dies (its refresh stops; nothing unregisters): the entry goes by itself.
    await a.registry.close();
    const took = await eventually(async () => (await b.registry.lookup('peer-1')) === undefined, 'the dead node\'s entry expiring');
    assert.ok(took <= ttlMs + 500, `expired within the TTL (${took} ms)`);
  });
});

test('a replaced entry is not kept alive by its old node, and an entry lost while its socket lives comes back', async (t) => {
  await withRedis(t, async (redis, node) => {
    const ttlMs = 600;
    const [a, b] = [await node(ttlMs), await node(ttlMs)];
    await a.registry.register(record('peer-1', 'a:1', 'a'));
    await b.registry.register(record('peer-1', 'b:1', 'b'));
    await b.registry.close(); // node b dies; node a still runs its refresh
    // Had node a extended it (or written its own back), it would never go.
    await eventually(async () => (await a.registry.lookup('peer-1')) === undefined, 'the entry that replaced node a\'s expiring');
    assert.equal(await a.registry.size(), 0, 'node a let go of the registration it lost');
    // An entry that vanished (Redis restarted, or flushed) while its socket lives is written again.
    const c = await node(ttlMs);
    await c.registry.register(record('peer-2', 'c:1', 'c'));
    await c.client.sendCommand(['DEL', `${redis.prefix}peer:peer-2`]);
    await eventually(async () => (await a.registry.lookup('peer-2'))?.connectionId === 'c:1', 'the lost entry written again by its node');
  });
});

test('the signal bus delivers to the node listening and tells when no node is', async (t) => {
  await withRedis(t, async (redis, node) => {
    const [a, b] = [await node(), await node()];
    const busA = await RedisSignalBus.open({ client: a.client, node: 'node-a', prefix: redis.prefix });
    const busB = await RedisSignalBus.open({ client: b.client, node: 'node-b', prefix: redis.prefix });
    try {
      const received: unknown[] = [];
      busB.listen((message) => received.push(message));
      for (let i = 0; i < 5; i++) assert.equal(await busA.send('node-b', { type: 'end', session: `s${i}` }), true);
      await until(() => received.length === 5, 'five messages at node b');
      assert.deepEqual(received, [0, 1, 2, 3, 4].map((i) => ({ type: 'end', session: `s${i}` })), 'in the order sent');
      assert.equal(await busA.send('node-gone', { type: 'end', session: 's' }), false, 'nobody listens for a node that is not running');
    } finally {
      await busA.close();
      await busB.close();
    }
  });
});

test('an unreachable Redis fails at once, naming the URL and the cause', async () => {
  await assert.rejects(connectRedis({ url: 'redis://:secret@127.0.0.1:1/0' }), (error: NatpunchError) => {
    assert.equal(error.code, 'ERR_REDIS');
    assert.match(error.message, /cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1\/0: connection refused/);
    assert.doesNotMatch(error.message, /secret/);
    return true;
  });
});
