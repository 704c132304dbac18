/**
 * Forward a TCP port through a peer connection, like `ssh -L` (what `natpunch expose` and
 * `natpunch forward` do): every TCP connection made to a local port becomes one stream of a
 * MuxSession over a single peer connection, and comes out on the other peer as a TCP connection
 * to its service. Each stream has its own flow control, so a stalled one never blocks another.
 * Run: `node dist/examples/forward-port.js`.
 */
import { once } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { createPeer, generateIdentity, MuxSession, type Connection, type MuxStream } from 'natpunch';
import { startRendezvous } from './rendezvous.js';

/**
 * Join two streams both ways; an error on either side tears both down. The TCP sockets are made
 * with `allowHalfOpen: true`, so a FIN is passed on as a FIN and the answer can still flow back.
 */
function join(a: Duplex, b: Duplex): void {
  a.pipe(b);
  b.pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
}

/** The address a listening server got (we ask for port 0: the kernel picks a free one). */
function portOf(server: net.Server): number {
  return (server.address() as net.AddressInfo).port;
}

// The service to publish: a TCP server that answers each line in capitals.
const service = net.createServer((socket) => {
  socket.setEncoding('utf8');
  socket.on('data', (text: string) => socket.write(text.toUpperCase()));
  socket.on('end', () => socket.end());
});
service.listen(0, '127.0.0.1');
await once(service, 'listening');

const rendezvous = await startRendezvous();
const options = { server: rendezvous.url, bindAddress: '127.0.0.1', ipv6: false };
const exposing = await createPeer({ ...options, identity: generateIdentity() });
const forwarding = await createPeer({ ...options, identity: generateIdentity() });
let local: net.Server | undefined;
try {
  // Exposing side: the peer that accepted the connection is the session's non-initiator; each
  // stream the other side opens becomes one TCP connection to the service.
  exposing.on('connection', (connection: Connection) => {
    const session = new MuxSession(connection, { initiator: false });
    session.on('stream', (stream: MuxStream, target: string) => {
      if (target !== 'tcp') return stream.reset(); // the opener names what a stream is for
      join(stream, net.connect({ port: portOf(service), host: '127.0.0.1', allowHalfOpen: true }));
    });
  });

  // Forwarding side: one peer connection, one session; a local TCP port whose connections
  // each open a stream.
  const connection = await forwarding.connect(exposing.peerId);
  const session = new MuxSession(connection, { initiator: true });
  const server = net.createServer({ allowHalfOpen: true }, (socket) => join(socket, session.open('tcp')));
  local = server;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  console.log(`forwarding 127.0.0.1:${portOf(server)} to the service at 127.0.0.1:${portOf(service)} on the other peer, over ${connection.path}`);

  // Three clients at once, as three browser tabs or ssh sessions would be.
  const ask = async (question: string): Promise<string> => {
    const socket = net.connect(portOf(server), '127.0.0.1');
    socket.setEncoding('utf8');
    let answer = '';
    socket.on('data', (text: string) => { answer += text; });
    await once(socket, 'connect');
    socket.end(question);
    await once(socket, 'close');
    return answer;
  };
  const answers = await Promise.all(['one', 'two', 'three'].map(ask));
  for (const answer of answers) console.log(`client: got "${answer}"`);
  console.log(`streams open after the clients closed: ${session.streams}`);

  // Close the session (GO_AWAY, then the connection ends) and wait for the connection to close.
  const closed = once(connection, 'close');
  session.close();
  await closed;
} finally {
  local?.close();
  await forwarding.close();
  await exposing.close();
  service.close();
  await rendezvous.stop();
}
