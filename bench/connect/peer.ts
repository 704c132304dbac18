/**
 * One side of bench/connect's stream-throughput run, started by the benchmark inside a lab host
 * namespace. It uses only the public library (createPeer, peer.connect, 'connection') with a
 * fresh in-memory identity, and prints one JSON object per line on stdout:
 *
 *   node dist/bench/connect/peer.js sink   --server URL [--warmup-ms W]
 *     {"event":"ready","id":ID}, then, once the sender's stream ends,
 *     {"event":"received","bytes":N,"measuredBytes":M,"measuredMs":MS,"goodput":BYTES_PER_S,"load":{...},"connect":{...}}
 *   node dist/bench/connect/peer.js source --server URL --to ID --seconds S [--transport auto|udp|tcp|relay]
 *     {"event":"connected",...}, then {"event":"sent","bytes":N,"ms":MS,"load":{...},"sends":"how the datagrams left"}
 *
 * Goodput is measured where the bytes arrive, from the first byte W ms after the first payload
 * byte to the last one (so neither process start-up, the handshake, slow start nor JIT warm-up
 * counts), as iperf3 reports its receiver side with --omit. `load` is each side's CPU (user and
 * system, in cores) and event-loop utilisation over the measured part: which side was the limit.
 * Data comes from one preallocated random buffer written again and again with backpressure, so
 * the figure is the stream's own, not the cost of reading a file or a pipe.
 */

import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createPeer, type Connection } from '../../src/index.js';
import { generateIdentity } from '../../src/identity/index.js';
import { GoodputMeter, LoadMark } from '../support/goodput-meter.js';
import { udpBatchAvailable } from '../../src/punch/udp-batch.js';

const TRANSPORTS = ['auto', 'udp', 'tcp', 'relay'] as const;
type Transport = (typeof TRANSPORTS)[number];

/** Bytes per write(): large enough that per-call overhead is noise, small enough to interleave with ACKs. */
const CHUNK = 64 * 1024;

function emit(event: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(event) + '\n');
}

function describe(connection: Connection): Record<string, unknown> {
  return { peer: connection.remotePeerId, path: connection.path, technique: connection.technique, remote: connection.remote, ms: connection.ms };
}

/** The stream's loss and congestion counters: why a path ran slower than the CPUs allow. */
function streamStats(connection: Connection): Record<string, number | undefined> {
  const { packetsSent, packetsReceived, packetsLost, retransmits, tailLossProbes, retransmissionTimeouts, congestionEvents, cwnd, rtt, minRtt, datagramsDropped } = connection.stats;
  return { packetsSent, packetsReceived, packetsLost, retransmits, tailLossProbes, retransmissionTimeouts, congestionEvents, cwnd, rtt, minRtt, datagramsDropped };
}

async function sink(server: string, warmupMs: number): Promise<void> {
  const peer = await createPeer({ server, identity: generateIdentity() });
  try {
    const connection = await new Promise<Connection>((resolve, reject) => {
      peer.once('connection', resolve);
      peer.once('connection-error', reject);
      emit({ event: 'ready', id: peer.peerId });
    });
    emit({ event: 'connected', ...describe(connection) });
    // Counted from the first byte `warmupMs` after the first one (slow start and JIT warm-up
    // excluded, as iperf3 --omit does) to the last one.
    const meter = new GoodputMeter(warmupMs);
    connection.on('data', (chunk: Buffer) => meter.add(chunk.length));
    await new Promise<void>((resolve, reject) => {
      connection.once('end', resolve);
      connection.once('error', reject);
    });
    emit({ event: 'received', ...meter.report(), connect: describe(connection), stream: streamStats(connection) });
    // Half-close back so the sender sees its stream end, then wait for our FIN to be delivered.
    await new Promise<void>((resolve) => connection.end(resolve));
  } finally {
    await peer.close();
  }
}

/** Writes for `seconds` (the sink's warm-up included), then ends and waits for the sink's end. */
async function source(server: string, to: string, seconds: number, transport: Transport): Promise<void> {
  const peer = await createPeer({ server, identity: generateIdentity() });
  try {
    const connection = await peer.connect(to, { transport });
    emit({ event: 'connected', ...describe(connection) });
    const data = randomBytes(CHUNK);
    const ended = new Promise<void>((resolve, reject) => {
      connection.once('end', resolve);
      connection.once('error', reject);
      connection.resume();
    });
    const started = performance.now();
    const stopAt = started + seconds * 1000;
    const since = new LoadMark();
    let sent = 0;
    while (performance.now() < stopAt) {
      sent += CHUNK;
      if (!connection.write(data)) {
        await new Promise<void>((resolve, reject) => {
          const onError = (error: Error): void => { connection.off('drain', onDrain); reject(error); };
          const onDrain = (): void => { connection.off('error', onError); resolve(); };
          connection.once('drain', onDrain);
          connection.once('error', onError);
        });
      }
    }
    const writing = since.load();
    connection.end();
    // The sink answers our end with its own once every byte arrived: then the transfer is over.
    await ended;
    // How the stream's datagrams left: batched through native/udp-batch (UDP GSO unless
    // NATPUNCH_NO_GSO=1, or the kernel refused it), or one sendmsg each.
    const batching = udpBatchAvailable();
    const sends = !batching.ok ? `one sendmsg per datagram (${batching.reason})`
      : process.env['NATPUNCH_NO_GSO'] === '1' ? 'batched: sendmmsg without UDP GSO (NATPUNCH_NO_GSO=1)'
        : 'batched: sendmmsg + UDP GSO (native/udp-batch; NATPUNCH_NO_NATIVE=1 for one sendmsg per datagram)';
    emit({ event: 'sent', bytes: sent, ms: performance.now() - started, load: writing, sends, stream: streamStats(connection) });
  } finally {
    await peer.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, strict: true,
    options: {
      server: { type: 'string' }, to: { type: 'string' }, seconds: { type: 'string' }, 'warmup-ms': { type: 'string', default: '0' },
      transport: { type: 'string', default: 'auto' },
    },
  });
  const [mode] = positionals;
  if (!values.server) throw new Error('bench/connect/peer: --server URL is required');
  if (mode === 'sink') {
    const warmupMs = Number(values['warmup-ms']);
    if (!Number.isFinite(warmupMs) || warmupMs < 0) throw new Error(`bench/connect/peer sink: --warmup-ms ${values['warmup-ms']}, expected a number >= 0`);
    return sink(values.server, warmupMs);
  }
  if (mode === 'source') {
    const seconds = Number(values.seconds);
    if (!values.to || !Number.isFinite(seconds) || seconds <= 0) throw new Error(`bench/connect/peer source: need --to ID and --seconds S > 0, got ${values.to} and ${values.seconds}`);
    const transport = values.transport as Transport;
    if (!TRANSPORTS.includes(transport)) throw new Error(`bench/connect/peer source: --transport ${transport}: expected ${TRANSPORTS.join(', ')}`);
    return source(values.server, values.to, seconds, transport);
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
