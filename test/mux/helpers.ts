import { createServer, connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { once, within } from '../support/wait.js';
import { MuxSession, type MuxStream } from '../../src/mux/index.js';

/** Two ends of a real loopback TCP connection (real backpressure, real ordering). */
export async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer({ allowHalfOpen: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepted = once(server, 'connection');
  const client = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  const [[socket]] = await Promise.all([accepted, once(client, 'connect')]);
  server.close();
  return [client, socket as Socket];
}

const ignore = (): void => undefined;

/**
 * Streams of a test session get a no-op 'error' listener: tearing the sockets down after a
 * test destroys streams still open, and that must not become an uncaught exception. Tests
 * that expect an error wait for it themselves.
 */
function quietStreams(session: MuxSession): MuxSession {
  const open = session.open.bind(session);
  session.open = (target: string): MuxStream => open(target).on('error', ignore);
  session.on('stream', (stream: MuxStream) => stream.on('error', ignore));
  return session;
}

/** A connected pair of sessions over loopback TCP: `a` initiates (odd ids), `b` accepts. */
export async function sessionPair(): Promise<{ a: MuxSession; b: MuxSession; sockets: [Socket, Socket]; close(): void }> {
  const sockets = await socketPair();
  const a = quietStreams(new MuxSession(sockets[0], { initiator: true }));
  const b = quietStreams(new MuxSession(sockets[1], { initiator: false }));
  return { a, b, sockets, close: () => { sockets[0].destroy(); sockets[1].destroy(); } };
}

/**
 * Everything `stream` yields until its end, without destroying it (unlike `for await`, which
 * destroys a Duplex whose writable side is still open: a RESET for a mux stream).
 */
export function collect(stream: Readable, timeoutMs = 60_000): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  const done = new Promise<Buffer>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => { chunks.push(chunk); bytes += chunk.length; });
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
    stream.resume(); // a paused stream does not flow when 'data' gets a listener
  });
  return within(done, `the end of stream ${(stream as MuxStream).id ?? ''}`, { timeoutMs, seen: () => `${bytes} bytes` });
}
