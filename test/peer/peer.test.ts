import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { NatpunchServer } from '../../src/server/natpunch-server.js';
import { createPeer, generateIdentity, type Connection } from '../../src/index.js';
import { readAll } from '../support/streams.js';
import { once, until } from '../support/wait.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
test('two peers on loopback connect three times in a row; each connection carries 1 MiB each way intact', { timeout: 120_000 }, async () => {
  const server = await NatpunchServer.listen({ address: '127.0.0.1', altAddress: '127.0.0.2', port: 0, altPort: 0, httpPort: 0 });
  const a = await createPeer({ server: server.rendezvousUrl!, identity: generateIdentity() });
  const b = await createPeer({ server: server.rendezvousUrl!, identity: generateIdentity() });
  try {
    for (let i = 0; i < 3; i++) {
      const incoming = once(b, 'connection');
      const ca = await a.connect(b.peerId);
      const [cb] = await incoming as [Connection];
      assert.equal(ca.remotePeerId, b.peerId);
      assert.equal(cb.remotePeerId, a.peerId);
      assert.equal(ca.path, 'direct-udp');
      const fromA = randomBytes(1 << 20);
      const fromB = randomBytes(1 << 20);
      const [gotA, gotB] = [readAll(ca), readAll(cb)];
      ca.end(fromA);
      cb.end(fromB);
      assert.equal(sha(await gotB), sha(fromA), `connection ${i}: a -> b`);
      assert.equal(sha(await gotA), sha(fromB), `connection ${i}: b -> a`);
    }
  } finally {
    await a.close();
    await b.close();
    await server.close();
  }
});

test('connecting to a peer id nobody registered fails with a clear error', { timeout: 60_000 }, async () => {
  const server = await NatpunchServer.listen({ address: '127.0.0.1', port: 0, httpPort: 0 });
  const a = await createPeer({ server: server.rendezvousUrl!, identity: generateIdentity() });
  try {
    await assert.rejects(a.connect(generateIdentity().peerId), (e: unknown) => /not.*(found|registered)/i.test(String((e as Error).message)));
  } finally {
    await a.close();
    await server.close();
  }
});

test('a peer keeps its mapping at the STUN server alive with periodic Binding requests', { timeout: 30_000 }, async () => {
  const server = await NatpunchServer.listen({ address: '127.0.0.1', port: 0, httpPort: 0 });
  const peer = await createPeer({ server: server.rendezvousUrl!, identity: generateIdentity(), keepaliveMs: 50 });
  try {
    const before = server.stun.stats.requests;
    await until(() => server.stun.stats.requests >= before + 3, 'three keepalive Binding requests', { intervalMs: 20, seen: () => `${server.stun.stats.requests - before}` });
    assert.ok(server.stun.stats.requests >= before + 3);
  } finally {
    await peer.close();
    await server.close();
  }
});

test('a server on an IPv4 and an IPv6 address is one rendezvous: a peer registered over IPv6 is reached from one registered over IPv4', { timeout: 60_000 }, async () => {
  const server = await NatpunchServer.listen({ address: '127.0.0.1', extraAddresses: ['::1'], port: 0, httpPort: 0 });
  const [url4, url6] = [server.rendezvousUrl!, server.extraRendezvousUrls[0]!];
  assert.match(url6, /^ws:\/\/\[::1\]:\d+\/$/);
  assert.equal(url6.split(']:')[1], url4.split(':')[2], 'the same HTTP port on both addresses');
  assert.equal(server.extraStun[0]!.addresses[0]!.port, server.stun.addresses[0]!.port, 'the same STUN port on both addresses');
  const a = await createPeer({ server: url4, identity: generateIdentity() });
  const b = await createPeer({ server: url6, identity: generateIdentity() });
  try {
    // With an IPv6 socket (this host has a global IPv6 address), b proved its srflx over IPv6,
    // from the STUN server on the address it reached the rendezvous at; without, it has none.
    const hasIpv6 = Object.values((await import('node:os')).networkInterfaces()).flat().some((i) => i?.family === 'IPv6' && !i.internal && !i.address.startsWith('fe80'));
    if (hasIpv6) assert.match(String(b.publicAddress), /^\[::1\]:\d+$/);
    assert.match(String(a.publicAddress), /^127\.0\.0\.1:\d+$/);
    const incoming = once(b, 'connection');
    const ca = await a.connect(b.peerId);
    const [cb] = await incoming as [Connection];
    assert.equal(ca.path, 'direct-udp');
    const [gotA, gotB] = [readAll(ca), readAll(cb)];
    ca.end(Buffer.from('from IPv4'));
    cb.end(Buffer.from('from IPv6'));
    assert.equal((await gotB).toString(), 'from IPv4');
    assert.equal((await gotA).toString(), 'from IPv6');
  } finally {
    await a.close();
    await b.close();
    await server.close();
  }
});

test('peer.close() right after end(): the end is delivered first, and nothing throws after the socket is gone', { timeout: 60_000 }, async () => {
  const server = await NatpunchServer.listen({ address: '127.0.0.1', port: 0, httpPort: 0 });
  const a = await createPeer({ server: server.rendezvousUrl!, identity: generateIdentity() });
  const b = await createPeer({ server: server.rendezvousUrl!, identity: generateIdentity() });
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown): void => { uncaught.push(error); };
  process.on('uncaughtException', onUncaught);
  try {
    const incoming = once(b, 'connection');
    const ca = await a.connect(b.peerId);
    const [cb] = await incoming as [Connection];
    const got = readAll(cb);
    // Read a's side to its end with listeners: `for await` (readAll) would destroy the Duplex at
    // the end, resetting a's own direction before it was written.
    const fromB = new Promise((resolve) => { ca.on('data', () => {}); ca.once('end', resolve); });
    cb.end();
    await fromB;
    const payload = randomBytes(256 << 10);
    ca.end(payload);
    // No wait for 'finish': the peer closes while the data and the FIN are still in flight.
    await a.close();
    assert.equal(sha(await got), sha(payload), 'every byte and the end arrived');
  } finally {
    process.off('uncaughtException', onUncaught);
    await a.close();
    await b.close();
    await server.close();
  }
  assert.deepEqual(uncaught, []);
});
