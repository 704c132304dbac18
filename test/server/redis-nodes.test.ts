import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { NatpunchServer } from '../../src/server/natpunch-server.js';
import { createPeer, generateIdentity, type Connection, type Peer } from '../../src/index.js';
import type { ReconnectInfo } from '../../src/rendezvous/reconnecting-client.js';
import { skipUnlessInstalled } from '../support/process.js';
import { type TestRedis, startRedis } from '../support/redis-server.js';
import { readExactly } from '../support/streams.js';
import { once } from '../support/wait.js';

/**
 * Two `natpunch serve` nodes (NatpunchServer, in this process) sharing one real redis-server:
 * peers registered on different nodes connect directly, and a node shutting down hands its peers
 * to the other one without interrupting their direct connections.
 */

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function withNodes(t: import('node:test').TestContext, body: (nodes: NatpunchServer[], redis: TestRedis) => Promise<void>): Promise<void> {
  if (skipUnlessInstalled(t, ['redis-server'], 'apt-get install redis-server')) return;
  const redis = await startRedis();
  const nodes: NatpunchServer[] = [];
  try {
    for (const name of ['node-1', 'node-2']) {
      nodes.push(await NatpunchServer.listen({
        address: '127.0.0.1', port: 0, httpPort: 0, relay: { builtIn: false },
        redis: { url: redis.url, nodeName: name, prefix: redis.prefix, registryTtlMs: 2_000 },
      }));
    }
    await body(nodes, redis);
  } finally {
    for (const node of nodes) await node.close();
    await redis.stop();
  }
}

/** `from` connects to `to`; 64 KiB each way arrive intact. Returns both ends, still open. */
async function connectAndCheck(from: Peer, to: Peer): Promise<[Connection, Connection]> {
  const incoming = once(to, 'connection') as Promise<[Connection]>;
  const outgoing = await from.connect(to.peerId);
  const [accepted] = await incoming;
  assert.equal(outgoing.remotePeerId, to.peerId);
  for (const [a, b] of [[outgoing, accepted], [accepted, outgoing]] as const) {
    const data = randomBytes(64 << 10);
    const got = readExactly(b, data.length);
    a.write(data);
    assert.equal(sha(await got), sha(data));
  }
  return [outgoing, accepted];
}

test('a peer registered on node 1 connects directly to a peer registered on node 2, over one Redis', { timeout: 60_000 }, async (t) => {
  await withNodes(t, async ([one, two]) => {
    const a = await createPeer({ server: one!.rendezvousUrl!, identity: generateIdentity(), keepaliveMs: 0 });
    const b = await createPeer({ server: two!.rendezvousUrl!, identity: generateIdentity(), keepaliveMs: 0 });
    try {
      assert.equal(one!.rendezvous!.stats.peers, 1);
      assert.equal(two!.rendezvous!.stats.peers, 1);
      const [there] = await connectAndCheck(a, b);
      assert.equal(there.path, 'direct-udp');
      const [back] = await connectAndCheck(b, a);
      assert.equal(back.path, 'direct-udp');
      assert.equal(two!.rendezvous!.stats.punches + one!.rendezvous!.stats.punches, 2);
      there.destroy();
      back.destroy();
    } finally {
      await a.close();
      await b.close();
    }
  });
});

test('a node shutting down moves its peers to the other node at once, and their direct connection goes on', { timeout: 60_000 }, async (t) => {
  await withNodes(t, async ([one, two]) => {
    const servers = [one!.rendezvousUrl!, two!.rendezvousUrl!];
    const a = await createPeer({ server: servers, identity: generateIdentity(), keepaliveMs: 0 });
    const b = await createPeer({ server: servers, identity: generateIdentity(), keepaliveMs: 0 });
    try {
      assert.equal(one!.rendezvous!.stats.peers, 2, 'both registered at the first server given');
      const [outgoing, accepted] = await connectAndCheck(a, b);
      const moved = Promise.all([a, b].map((p) => once(p, 'reconnected') as Promise<[ReconnectInfo]>));
      await one!.close({ graceMs: 5_000 });
      const infos = (await moved).map(([info]) => info);
      for (const info of infos) assert.ok(info.downMs < 2_000, `registered on node 2 within ${info.downMs} ms (no backoff: the node asked them to move)`);
      assert.equal(two!.rendezvous!.stats.peers, 2);
      // The same connection, still carrying bytes both ways.
      for (const [x, y] of [[outgoing, accepted], [accepted, outgoing]] as const) {
        const data = randomBytes(16 << 10);
        const got = readExactly(y, data.length);
        x.write(data);
        assert.equal(sha(await got), sha(data));
      }
      // And new sessions go through node 2.
      const [again] = await connectAndCheck(b, a);
      assert.equal(again.path, 'direct-udp');
      outgoing.destroy();
      again.destroy();
    } finally {
      await a.close();
      await b.close();
    }
  });
});
