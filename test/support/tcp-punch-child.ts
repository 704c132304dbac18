/**
 * Runs inside a private network namespace (see netns-loopback.ts): two "peers" on 127.0.0.1,
 * each with its kept STUN/TCP connection, punch TCP to each other, or two full Peers connect
 * with transport 'tcp'. Prints one JSON line with what happened.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { StunServer } from '../../src/stun/server.js';
import { TcpMapping } from '../../src/peer/tcp-mapping.js';
import { tcpSimultaneousOpen } from '../../src/punch/tcp-simultaneous-open.js';
import { NatpunchServer } from '../../src/server/natpunch-server.js';
import { createPeer, generateIdentity, type Connection } from '../../src/index.js';
import { once, within } from './wait.js';
import { readAll } from './streams.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Both ends write `bytes` and end; resolves with whether each side got the other's bytes intact. */
async function exchange(a: Duplex, b: Duplex, bytes: number): Promise<{ aToB: boolean; bToA: boolean }> {
  const fromA = randomBytes(bytes);
  const fromB = randomBytes(bytes);
  const [gotA, gotB] = [readAll(a, { timeoutMs: 20_000 }), readAll(b, { timeoutMs: 20_000 })];
  a.end(fromA);
  b.end(fromB);
  return { aToB: sha(await gotB) === sha(fromA), bToA: sha(await gotA) === sha(fromB) };
}

async function punch(): Promise<Record<string, unknown>> {
  const stun = await StunServer.listen({ address: '127.0.0.1', port: 0 });
  const server = stun.addresses[0]!;
  const [a, b] = await Promise.all([TcpMapping.learn(server), TcpMapping.learn(server)]);
  try {
    const startAt = Date.now() + 100;
    const [pa, pb] = await Promise.all([
      // The controlled side takes the socket the controlling side writes on first.
      tcpSimultaneousOpen({ localPort: a.localPort, remoteCandidates: [b.mapped], role: 'controlling', startAt })
        .then((r) => { r.socket.write('hello'); return r; }),
      tcpSimultaneousOpen({ localPort: b.localPort, remoteCandidates: [a.mapped], role: 'controlled', startAt }),
    ]);
    const [first] = await once(pb.socket, 'data') as [Buffer];
    const result = {
      localPorts: [a.localPort, b.localPort], mapped: [a.mapped.port, b.mapped.port],
      sockets: [[pa.socket.localPort, pa.socket.remotePort], [pb.socket.localPort, pb.socket.remotePort]],
      attempts: [pa.attempts, pb.attempts], first: first.toString(), alive: [a.alive, b.alive],
      ...(await exchange(pa.socket, pb.socket, 1 << 20)),
    };
    return result;
  } finally {
    a.close();
    b.close();
    await stun.close();
  }
}

async function peers(): Promise<Record<string, unknown>> {
  const server = await NatpunchServer.listen({ address: '127.0.0.1', altAddress: '127.0.0.2', port: 0, altPort: 0, httpPort: 0 });
  const a = await createPeer({ server: server.rendezvousUrl!, identity: generateIdentity() });
  const b = await createPeer({ server: server.rendezvousUrl!, identity: generateIdentity() });
  try {
    const incoming = new Promise<Connection>((resolve, reject) => { b.once('connection', resolve); b.once('connection-error', reject); });
    const ca = await a.connect(b.peerId, { transport: 'tcp' });
    const cb = await within(incoming, "the accepting peer's 'connection'");
    return {
      tcpPublicAddress: [a.tcpPublicAddress, b.tcpPublicAddress],
      path: [ca.path, cb.path], technique: [ca.technique, cb.technique], ids: [cb.remotePeerId === a.peerId, ca.remotePeerId === b.peerId],
      ...(await exchange(ca, cb, 1 << 20)),
    };
  } finally {
    await a.close();
    await b.close();
    await server.close();
  }
}

const scenario = process.argv[2] === 'peers' ? peers : punch;
scenario().then(
  (result) => { process.stdout.write(`${JSON.stringify(result)}\n`); process.exit(0); },
  (error: Error & { code?: string }) => { process.stdout.write(`${JSON.stringify({ error: error.message, code: error.code })}\n`); process.exit(1); },
);
