import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from '../support/wait.js';
import { createHash, randomBytes } from 'node:crypto';
import { SecureStream } from '../../src/peer/secure-stream.js';
import { generateIdentity } from '../../src/identity/index.js';
import { readAll } from '../support/streams.js';

async function tcpPair(): Promise<[net.Socket, net.Socket, () => void]> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const [accepted] = await once(server, 'connection') as [net.Socket];
  await once(client, 'connect').catch(() => undefined);
  return [client, accepted, () => server.close()];
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('a Noise-secured stream carries 1 MiB each way intact, and the raw bytes are ciphertext', async () => {
  const [a, b, close] = await tcpPair();
  const alice = generateIdentity();
  const bob = generateIdentity();
  const seen: Buffer[] = [];
  b.on('data', (chunk: Buffer) => seen.push(chunk));
  const [sa, sb] = await Promise.all([
    SecureStream.establish(a, { identity: alice, initiator: true, expectedPeerId: bob.peerId }),
    SecureStream.establish(b, { identity: bob, initiator: false }),
  ]);
  assert.equal(sa.remotePeerId, bob.peerId);
  assert.equal(sb.remotePeerId, alice.peerId);
  const fromA = randomBytes(1 << 20);
  const fromB = randomBytes(1 << 20);
  const gotB = readAll(sb);
  const gotA = readAll(sa);
  sa.end(fromA);
  sb.end(fromB);
  assert.equal(sha(await gotB), sha(fromA));
  assert.equal(sha(await gotA), sha(fromB));
  assert.equal(Buffer.concat(seen).indexOf(fromA.subarray(0, 64)), -1, 'plaintext visible on the wire');
  close();
});

test('dialling the wrong peer id fails the handshake with ERR_NOISE', async () => {
  const [a, b, close] = await tcpPair();
  const results = await Promise.allSettled([
    SecureStream.establish(a, { identity: generateIdentity(), initiator: true, expectedPeerId: generateIdentity().peerId, timeoutMs: 5000 }),
    SecureStream.establish(b, { identity: generateIdentity(), initiator: false, timeoutMs: 5000 }),
  ]);
  assert.equal(results[0].status, 'rejected');
  assert.equal((results[0] as PromiseRejectedResult).reason.code, 'ERR_NOISE');
  a.destroy(); b.destroy();
  close();
});
