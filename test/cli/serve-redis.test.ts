import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createPeer, generateIdentity, type Connection, type Peer } from '../../src/index.js';
import type { ReconnectInfo } from '../../src/rendezvous/reconnecting-client.js';
import { natpunch, runCli } from '../support/cli.js';
import { ProcessOutput, localHost, skipUnlessInstalled, stopProcess } from '../support/process.js';
import { startRedis } from '../support/redis-server.js';
import { readExactly } from '../support/streams.js';
import { once } from '../support/wait.js';

/**
 * Real `natpunch serve --redis` processes on one real redis-server: a node killed with SIGKILL
 * loses its peers to the other node within 5 s, and their direct connection never notices.
 */

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function roundTrip(x: Connection, y: Connection, bytes: number): Promise<void> {
  for (const [from, to] of [[x, y], [y, x]] as const) {
    const data = randomBytes(bytes);
    const got = readExactly(to, data.length);
    from.write(data);
    assert.equal(sha(await got), sha(data));
  }
}

test('serve --redis: a node killed with SIGKILL, its peers registered on the other node within 5 s, their connection unbroken', { timeout: 90_000 }, async (t) => {
  if (skipUnlessInstalled(t, ['redis-server'], 'apt-get install redis-server')) return;
  const redis = await startRedis();
  const nodes: ProcessOutput[] = [];
  const peers: Peer[] = [];
  try {
    const urls: string[] = [];
    for (const name of ['node-1', 'node-2']) {
      const child = localHost.spawn(natpunch('serve', '--address', '127.0.0.1', '--port', '0', '--http-port', '0', '--no-relay',
        '--redis', redis.url, '--node-name', name, '--registry-ttl', '2000'));
      const output = new ProcessOutput(child, `natpunch serve ${name}`);
      nodes.push(output);
      const [ready] = await output.waitFor([/ready/]);
      assert.match(ready!, new RegExp(`node ${name} sharing redis://127\\.0\\.0\\.1:${redis.port}`));
      urls.push(/rendezvous (ws:\/\/[^\s;]+)/.exec(ready!)![1]!);
    }
    const a = await createPeer({ server: urls, identity: generateIdentity(), keepaliveMs: 0 });
    peers.push(a);
    const b = await createPeer({ server: [urls[1]!, urls[0]!], identity: generateIdentity(), keepaliveMs: 0 });
    peers.push(b);
    // a is on node 1, b on node 2: the connection crosses nodes.
    const incoming = once(b, 'connection') as Promise<[Connection]>;
    const outgoing = await a.connect(b.peerId);
    const [accepted] = await incoming;
    assert.equal(outgoing.path, 'direct-udp');
    await roundTrip(outgoing, accepted, 64 << 10);

    const moved = once(a, 'reconnected', { timeoutMs: 5_000 }) as Promise<[ReconnectInfo]>;
    const killedAt = Date.now();
    nodes[0]!.child.kill('SIGKILL');
    const [info] = await moved;
    assert.ok(Date.now() - killedAt < 5_000, `re-registered on node 2 after ${Date.now() - killedAt} ms`);
    assert.ok(info.downMs < 5_000);
    // The same connection still carries bytes both ways.
    await roundTrip(outgoing, accepted, 64 << 10);
    assert.equal(outgoing.destroyed, false);
    // And b (on node 2) reaches a again through node 2.
    const again = once(a, 'connection') as Promise<[Connection]>;
    const second = await b.connect(a.peerId);
    const [secondAccepted] = await again;
    await roundTrip(second, secondAccepted, 16 << 10);
    second.destroy();
    outgoing.destroy();
  } finally {
    for (const peer of peers) await peer.close();
    for (const node of nodes) await stopProcess(node.child);
    await redis.stop();
  }
});

test('serve --redis with no Redis there: exit 1 and one line naming the URL and the cause', async () => {
  const result = await runCli('serve', '--address', '127.0.0.1', '--port', '0', '--http-port', '0', '--no-relay', '--redis', 'redis://127.0.0.1:1');
  assert.equal(result.code, 1, result.stderr);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0]!, /cannot reach Redis at redis:\/\/127\.0\.0\.1:1: connection refused/);
});
