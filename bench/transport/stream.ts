/**
 * bench/transport/stream: goodput of one natpunch stream over loopback UDP, beside raw UDP
 * goodput with the same datagram size, measured in the same run; the ratio is the figure of
 * merit (target >= 0.8).
 *
 * Both targets use the same topology: the sender on the main thread, the receiver in a worker
 * thread (bench/transport/receiver.ts), each with a node:dgram socket on 127.0.0.1 with 4 MiB
 * buffers and no per-send DNS lookup. Goodput is measured at the receiver from the first byte to
 * the last.
 * - raw: the sender sends DATAGRAM_SIZE-byte datagrams (successive slices of a random buffer,
 *   no copy) as fast as node:dgram takes them for the measured time; what the receiver gets is
 *   the ceiling of any user-space UDP protocol on node:dgram here (the kernel drops the rest).
 * - natpunch: a stream over createUdpPath with maxPayload DATAGRAM_SIZE; the sender writes 64 KiB
 *   chunks, honouring backpressure, for the measured time, then ends; only stream bytes count.
 * - natpunch batched: the same, with the path's sendBatch hook sending each burst through the
 *   udp-batch addon (one sendmmsg with UDP GSO, src/punch/udp-batch.ts), as the punched path
 *   does; skipped when the addon is unavailable (not built, NATPUNCH_NO_NATIVE=1).
 *
 *   node dist/bench/transport/stream.js [--duration-ms 5000] [--warmup-ms 2000] [--rounds 1]
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import type { Benchmark, BenchmarkContext, BenchmarkOptions } from '../benchmark.js';
import { formatCount, formatRatio, formatTable } from '../support/table.js';
import { createStream } from '../../src/transport/stream-connection.js';
import { createUdpPath } from '../../src/transport/udp-path.js';
import type { DatagramPath } from '../../src/transport/datagram-path.js';
import { createBatchSender, udpBatchAvailable } from '../../src/punch/udp-batch.js';
import { type ReceiverCommand, type ReceiverReport, benchSocket } from './receiver.js';

/** UDP payload bytes per datagram, for both targets (the 1200 of RFC 9000 §14). */
export const DATAGRAM_SIZE = 1200;
const CHUNK_SIZE = 64 * 1024;
/** Datagrams the raw sender hands to dgram per turn of its event loop. */
const RAW_BATCH = 64;
const RAW_SOURCE_BYTES = 16 * 1024 * 1024;
/** A target that does not finish within its measured time plus this is abandoned. */
const SLACK_MS = 30_000;

export interface Measurement {
  /** Bytes per second at the receiver. */
  goodput: number;
  bytes: number;
  seconds: number;
  datagrams: number;
  /** natpunch only: the sender's view. */
  retransmits?: number;
  rtt?: number;
  cwnd?: number;
}

class Receiver {
  readonly #worker = new Worker(fileURLToPath(new URL('./receiver.js', import.meta.url)));
  readonly #reports: ReceiverReport[] = [];
  readonly #waiters: Array<(report: ReceiverReport) => void> = [];
  readonly #failed: Promise<never>;

  constructor() {
    this.#worker.on('message', (report: ReceiverReport) => {
      const waiter = this.#waiters.shift();
      if (waiter !== undefined) waiter(report);
      else this.#reports.push(report);
    });
    this.#failed = new Promise((_, reject) => {
      this.#worker.once('error', reject);
      this.#worker.once('exit', (code) => reject(new Error(`bench/transport: receiver exited with code ${code}`)));
    });
    this.#failed.catch(() => {});
  }

  send(command: ReceiverCommand): void {
    this.#worker.postMessage(command);
  }

  next(timeoutMs: number): Promise<ReceiverReport> {
    const queued = this.#reports.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`bench/transport: no report from the receiver within ${timeoutMs} ms`)), timeoutMs);
    });
    const report = new Promise<ReceiverReport>((resolve) => this.#waiters.push(resolve));
    return Promise.race([report, timeout, this.#failed]).finally(() => clearTimeout(timer));
  }

  async stop(): Promise<void> {
    await this.#worker.terminate();
  }
}

function listeningPort(report: ReceiverReport): number {
  if (report.kind !== 'listening') throw new Error(`bench/transport: receiver said ${report.kind}, expected listening`);
  return report.port;
}

function measurement(report: ReceiverReport): Measurement {
  if (report.kind !== 'report' || !report.ok || report.seconds <= 0) {
    throw new Error(`bench/transport: the receiver reported a failed run (${JSON.stringify(report)})`);
  }
  return { goodput: report.bytes / report.seconds, bytes: report.bytes, seconds: report.seconds, datagrams: report.datagrams };
}

export async function measureRaw(durationMs: number, signal?: AbortSignal): Promise<Measurement> {
  const receiver = new Receiver();
  const socket = await benchSocket();
  try {
    receiver.send({ kind: 'raw' });
    const port = listeningPort(await receiver.next(10_000));
    // Distinct bytes in every datagram, as a real sender has, taken as views of one buffer.
    const source = randomBytes(RAW_SOURCE_BYTES);
    let at = 0;
    const deadline = performance.now() + durationMs;
    while (performance.now() < deadline && signal?.aborted !== true) {
      for (let i = 0; i < RAW_BATCH; i++) {
        if (at + DATAGRAM_SIZE > source.length) at = 0;
        socket.send(source.subarray(at, (at += DATAGRAM_SIZE)), port, '127.0.0.1');
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    receiver.send({ kind: 'done' });
    return measurement(await receiver.next(SLACK_MS));
  } finally {
    socket.close();
    await receiver.stop();
  }
}

export async function measureStream(durationMs: number, signal?: AbortSignal, batched = false): Promise<Measurement> {
  const receiver = new Receiver();
  const socket = await benchSocket();
  try {
    receiver.send({ kind: 'stream' });
    const port = listeningPort(await receiver.next(10_000));
    receiver.send({ kind: 'connect', port: socket.address().port });
    const path = createUdpPath(socket, { address: '127.0.0.1', port }, { maxPayload: DATAGRAM_SIZE });
    const sender = batched ? createBatchSender(socket) : undefined;
    if (batched && sender === undefined) throw new Error(`bench/transport: batched sends unavailable: ${JSON.stringify(udpBatchAvailable())}`);
    const remote = { family: 4, address: '127.0.0.1', port } as const;
    const streamPath: DatagramPath = sender === undefined ? path : { ...path, sendBatch: (buffers) => sender.send(buffers, remote) };
    const stream = createStream(streamPath);
    const errored = new Promise<never>((_, reject) => stream.once('error', reject));
    errored.catch(() => {});
    const chunk = randomBytes(CHUNK_SIZE);
    const deadline = performance.now() + durationMs;
    while (performance.now() < deadline && signal?.aborted !== true) {
      if (!stream.write(chunk)) await Promise.race([once(stream, 'drain'), errored]);
    }
    stream.end();
    stream.resume();
    const result = measurement(await Promise.race([receiver.next(SLACK_MS), errored]));
    const stats = stream.stats;
    if (!stream.closed) await Promise.race([once(stream, 'close'), errored]);
    path.close();
    return { ...result, retransmits: stats.retransmits, rtt: stats.rtt, cwnd: stats.cwnd };
  } finally {
    socket.close();
    await receiver.stop();
  }
}

export interface StreamBenchResult {
  datagramSize: number;
  raw: Measurement;
  natpunch: Measurement;
  /** natpunch with batched sends, when the addon is available. */
  batched?: Measurement;
  /** natpunch goodput / raw goodput. */
  ratio: number;
  /** batched natpunch goodput / raw goodput. */
  batchedRatio?: number;
}

export async function runStreamBench(options: Pick<BenchmarkOptions, 'durationMs' | 'warmupMs' | 'rounds'>, log: (line: string) => void, signal?: AbortSignal): Promise<StreamBenchResult> {
  if (options.warmupMs > 0) {
    log(`warm-up: natpunch stream for ${options.warmupMs} ms`);
    await measureStream(options.warmupMs, signal);
  }
  let raw: Measurement | undefined;
  let natpunch: Measurement | undefined;
  let batched: Measurement | undefined;
  const batching = udpBatchAvailable();
  if (!batching.ok) log(`natpunch batched: skipped (${batching.reason})`);
  for (let round = 1; round <= options.rounds; round++) {
    log(`round ${round}: raw UDP for ${options.durationMs} ms`);
    const r = await measureRaw(options.durationMs, signal);
    log(`round ${round}: natpunch stream for ${options.durationMs} ms`);
    const n = await measureStream(options.durationMs, signal);
    if (raw === undefined || r.goodput > raw.goodput) raw = r;
    if (natpunch === undefined || n.goodput > natpunch.goodput) natpunch = n;
    if (batching.ok) {
      log(`round ${round}: natpunch stream, batched sends, for ${options.durationMs} ms`);
      const b = await measureStream(options.durationMs, signal, true);
      if (batched === undefined || b.goodput > batched.goodput) batched = b;
    }
  }
  const result: StreamBenchResult = { datagramSize: DATAGRAM_SIZE, raw: raw!, natpunch: natpunch!, ratio: natpunch!.goodput / raw!.goodput };
  if (batched !== undefined) Object.assign(result, { batched, batchedRatio: batched.goodput / raw!.goodput });
  return result;
}

export function formatStreamBench(result: StreamBenchResult): string {
  const mbps = (m: Measurement): string => ((m.goodput * 8) / 1e6).toFixed(0);
  const mibs = (m: Measurement): string => (m.goodput / (1024 * 1024)).toFixed(1);
  const rows = [
    ['raw UDP', mibs(result.raw), mbps(result.raw), formatCount(result.raw.datagrams), '-', '1.00'],
    [
      'natpunch stream',
      mibs(result.natpunch),
      mbps(result.natpunch),
      formatCount(result.natpunch.datagrams),
      formatCount(result.natpunch.retransmits ?? 0),
      formatRatio(result.natpunch.goodput, result.raw.goodput),
    ],
  ];
  if (result.batched !== undefined) {
    const b = result.batched;
    rows.push(['natpunch batched', mibs(b), mbps(b), formatCount(b.datagrams), formatCount(b.retransmits ?? 0), formatRatio(b.goodput, result.raw.goodput)]);
  }
  return (
    `loopback UDP, ${result.datagramSize}-byte datagrams, receiver in a worker thread\n` +
    formatTable(['target', 'MiB/s', 'Mbit/s', 'datagrams rx', 'retransmits', 'ratio'], rows) +
    `\nratio natpunch/raw = ${result.ratio.toFixed(2)} (target >= 0.80)` +
    (result.batchedRatio === undefined ? '' : `; batched sends: ${result.batchedRatio.toFixed(2)}`)
  );
}

export const benchmark: Benchmark = {
  name: 'transport',
  description: 'natpunch stream goodput over loopback UDP vs raw UDP datagram goodput, same datagram size',
  async run(context: BenchmarkContext) {
    const result = await runStreamBench(context.options, (line) => context.log(line), context.signal);
    process.stdout.write(formatStreamBench(result) + '\n');
    return { ...result };
  },
};

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { 'duration-ms': { type: 'string' }, 'warmup-ms': { type: 'string' }, rounds: { type: 'string' } },
  });
  const options = {
    durationMs: Number(values['duration-ms'] ?? 5000),
    warmupMs: Number(values['warmup-ms'] ?? 2000),
    rounds: Number(values.rounds ?? 1),
  };
  const result = await runStreamBench(options, (line) => process.stderr.write(line + '\n'));
  process.stdout.write(formatStreamBench(result) + '\n');
  process.stdout.write(JSON.stringify(result) + '\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  });
}
