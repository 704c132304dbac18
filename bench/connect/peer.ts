/**
 * One side of bench/connect's stream-throughput run, started by the benchmark inside a lab host
 * namespace. It uses only the public library (createPeer, peer.connect, 'connection') with a
 * fresh in-memory identity, and prints one JSON object per line on stdout:
 *
 *   node dist/bench/connect/peer.js sink   --server URL
 *     {"event":"ready","id":ID}, then, once the sender's stream ends,
 *     {"event":"received","bytes":N,"firstToLastMs":MS,"goodput":BYTES_PER_S,"connect":{...}}
 *   node dist/bench/connect/peer.js source --server URL --to ID --bytes N
 *     {"event":"connected",...}, then {"event":"sent","bytes":N,"ms":MS}
 *
 * Goodput is measured where the bytes arrive, from the first payload byte to the last one (so
 * neither process start-up nor the handshake counts), as iperf3 reports its receiver side.
 * Data comes from one preallocated random buffer written again and again with backpressure, so
 * the figure is the stream's own, not the cost of reading a file or a pipe.
 */

import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createPeer, type Connection } from '../../src/index.js';
import { generateIdentity } from '../../src/identity/index.js';

/** Bytes per write(): large enough that per-call overhead is noise, small enough to interleave with ACKs. */
const CHUNK = 64 * 1024;

function emit(event: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(event) + '\n');
}

function describe(connection: Connection): Record<string, unknown> {
  return { peer: connection.remotePeerId, path: connection.path, technique: connection.technique, remote: connection.remote, ms: connection.ms };
}

async function sink(server: string): Promise<void> {
  const peer = await createPeer({ server, identity: generateIdentity() });
  try {
    const connection = await new Promise<Connection>((resolve, reject) => {
      peer.once('connection', resolve);
      peer.once('connection-error', reject);
      emit({ event: 'ready', id: peer.peerId });
    });
    emit({ event: 'connected', ...describe(connection) });
    let bytes = 0;
    let first = 0;
    let last = 0;
    connection.on('data', (chunk: Buffer) => {
      last = performance.now();
      if (bytes === 0) first = last;
      bytes += chunk.length;
    });
    await new Promise<void>((resolve, reject) => {
      connection.once('end', resolve);
      connection.once('error', reject);
    });
    const firstToLastMs = last - first;
    emit({ event: 'received', bytes, firstToLastMs, goodput: firstToLastMs > 0 ? (bytes * 1000) / firstToLastMs : null, connect: describe(connection) });
    // Half-close back so the sender sees its stream end, then wait for our FIN to be delivered.
    await new Promise<void>((resolve) => connection.end(resolve));
  } finally {
    await peer.close();
  }
}

async function source(server: string, to: string, total: number): Promise<void> {
  const peer = await createPeer({ server, identity: generateIdentity() });
  try {
    const connection = await peer.connect(to);
    emit({ event: 'connected', ...describe(connection) });
    const data = randomBytes(CHUNK);
    const ended = new Promise<void>((resolve, reject) => {
      connection.once('end', resolve);
      connection.once('error', reject);
      connection.resume();
    });
    const started = performance.now();
    let sent = 0;
    while (sent < total) {
      const size = Math.min(CHUNK, total - sent);
      sent += size;
      if (!connection.write(size === CHUNK ? data : data.subarray(0, size))) {
        await new Promise<void>((resolve, reject) => {
          const onError = (error: Error): void => { connection.off('drain', onDrain); reject(error); };
          const onDrain = (): void => { connection.off('error', onError); resolve(); };
          connection.once('drain', onDrain);
          connection.once('error', onError);
        });
      }
    }
    connection.end();
    // The sink answers our end with its own once every byte arrived: then the transfer is over.
    await ended;
    emit({ event: 'sent', bytes: sent, ms: performance.now() - started });
  } finally {
    await peer.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, strict: true,
    options: { server: { type: 'string' }, to: { type: 'string' }, bytes: { type: 'string' } },
  });
  const [mode] = positionals;
  if (!values.server) throw new Error('bench/connect/peer: --server URL is required');
  if (mode === 'sink') return sink(values.server);
  if (mode === 'source') {
    const bytes = Number(values.bytes);
    if (!values.to || !Number.isInteger(bytes) || bytes <= 0) throw new Error(`bench/connect/peer source: need --to ID and --bytes N > 0, got ${values.to} and ${values.bytes}`);
    return source(values.server, values.to, bytes);
  }
  throw new Error(`bench/connect/peer: mode ${mode}: expected sink or source`);
}

main(process.argv.slice(2)).then(
  () => { process.exit(0); },
  (error: unknown) => {
    process.stderr.write(`bench/connect/peer: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(1);
  },
);
