/**
 * Two peers meet at a rendezvous server and exchange a message over an end-to-end encrypted
 * connection. Run: `node dist/examples/hello.js` (after `npm run build`).
 *
 * Both peers live in this one process to keep the example short; in real use each runs on its
 * own machine, and only the peer id of the one that listens needs to travel to the other.
 */
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { finished } from 'node:stream/promises';
import { createPeer, generateIdentity, type Connection } from 'natpunch';
import { startRendezvous } from './rendezvous.js';

/** Everything `stream` sends until it ends, as text. */
async function readAll(stream: Duplex): Promise<string> {
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  await once(stream, 'end');
  return Buffer.concat(chunks).toString('utf8');
}

const rendezvous = await startRendezvous();
// Loopback only: bind the peers' UDP sockets to 127.0.0.1 and gather no IPv6 candidates. A
// fresh identity each (an Ed25519 key pair: its public key is the peer id); without
// `identity`, a peer uses the key in ~/.natpunch/key, created on first use.
const options = { server: rendezvous.url, bindAddress: '127.0.0.1', ipv6: false };
const alice = await createPeer({ ...options, identity: generateIdentity() });
const bob = await createPeer({ ...options, identity: generateIdentity() });
try {
  // Bob answers each connection: read the whole message, then reply and end his side.
  const bobDone = new Promise<void>((resolve, reject) => {
    bob.on('connection', (connection: Connection) => {
      void (async () => {
        const message = await readAll(connection);
        console.log(`bob: ${connection.remotePeerId.slice(0, 8)}… says "${message}"`);
        connection.end(`hello alice, this is ${bob.peerId.slice(0, 8)}…`);
        await finished(connection); // our reply acknowledged, both sides ended
      })().then(resolve, reject);
    });
    bob.on('connection-error', reject);
  });

  // Alice connects by Bob's peer id: rendezvous, hole punching (or a relay), Noise handshake.
  const connection = await alice.connect(bob.peerId);
  console.log(`alice: connected to bob over ${connection.path} (${connection.technique}) in ${connection.ms} ms`);
  connection.end('hello bob'); // write, then half-close: Bob sees the end of the message
  const reply = await readAll(connection);
  console.log(`alice: bob says "${reply}"`);
  await finished(connection);
  await bobDone;
} finally {
  // Close connections first, then the peers (sockets, registration), then the server.
  await alice.close();
  await bob.close();
  await rendezvous.stop();
}
