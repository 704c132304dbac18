/**
 * Child process of reconnect.test.ts: registers a peer at the server named in argv, closes it
 * as soon as the registration is lost (a 10-minute retry pending), and then simply returns. The
 * process exits by itself only if close() left no timer, socket or server running.
 */
import { createPeer, generateIdentity } from '../../src/index.js';
import type { RendezvousError } from '../../src/rendezvous/errors.js';
import type { DisconnectInfo } from '../../src/rendezvous/reconnecting-client.js';

const url = process.argv[2]!;
const peer = await createPeer({ server: url, identity: generateIdentity(), reconnect: { minDelayMs: 600_000, maxDelayMs: 600_000 } });
peer.on('disconnected', (reason: RendezvousError, info: DisconnectInfo) => {
  console.log(JSON.stringify({ event: 'disconnected', reason: reason.reason, retryInMs: info.retryInMs }));
  void peer.close().then(() => console.log('closed'));
});
console.log('registered');
