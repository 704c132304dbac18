/**
 * bench/connect's node:dgram reference: DATAGRAM_SIZE-byte datagrams sent as fast as node:dgram
 * takes them (views of one buffer, no protocol, no copy, no encryption), over the same lab path
 * and port forward as iperf3. What the sink receives is the ceiling of any stream built on
 * node:dgram here: the part of iperf3's figure that a Node process can reach at all.
 *
 *   node dist/bench/connect/udp-blast.js sink   --port P --warmup-ms W
 *     {"event":"ready"}, then once datagrams stop for IDLE_MS:
 *     {"event":"received","bytes":N,"measuredBytes":M,"measuredMs":MS,"goodput":BYTES_PER_S,"load":{...}}
 *   node dist/bench/connect/udp-blast.js source --host H --port P --size S --seconds T
 *     {"event":"sent","datagrams":N,"load":{...}}
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { GoodputMeter, LoadMark } from '../support/goodput-meter.js';

/** Datagrams handed to dgram per turn of the event loop (as bench/transport's raw sender). */
const BATCH = 64;
/** The sender is done once nothing arrived for this long. */
const IDLE_MS = 500;
const BUFFER_BYTES = 4 << 20;

function emit(event: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(event) + '\n');
}

async function socket(port: number): Promise<dgram.Socket> {
  const udp = dgram.createSocket('udp4');
  udp.bind(port, '0.0.0.0');
  await once(udp, 'listening');
  udp.setRecvBufferSize(BUFFER_BYTES);
  udp.setSendBufferSize(BUFFER_BYTES);
  return udp;
}

async function sink(port: number, warmupMs: number): Promise<void> {
  const udp = await socket(port);
  const meter = new GoodputMeter(warmupMs);
  udp.on('message', (message: Buffer) => meter.add(message.length));
  emit({ event: 'ready' });
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (meter.bytes > 0 && meter.idleMs > IDLE_MS) {
        clearInterval(timer);
        resolve();
      }
    }, 50);
  });
  emit({ event: 'received', ...meter.report() });
  udp.close();
}

async function source(host: string, port: number, size: number, seconds: number): Promise<void> {
  const udp = await socket(0);
  const data = Buffer.alloc(size * BATCH, 0x5a);
  const stopAt = performance.now() + seconds * 1000;
  const mark = new LoadMark();
  let datagrams = 0;
  await new Promise<void>((resolve) => {
    const burst = (): void => {
      for (let i = 0; i < BATCH; i++) udp.send(data.subarray(i * size, (i + 1) * size), port, host);
      datagrams += BATCH;
      if (performance.now() < stopAt) setImmediate(burst);
      else resolve();
    };
    burst();
  });
  emit({ event: 'sent', datagrams, load: mark.load() });
  udp.close();
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, strict: true,
    options: { host: { type: 'string' }, port: { type: 'string' }, size: { type: 'string' }, seconds: { type: 'string' }, 'warmup-ms': { type: 'string', default: '0' } },
  });
  const [mode] = positionals;
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bench/connect/udp-blast: --port ${values.port}, expected 1..65535`);
  if (mode === 'sink') return sink(port, Number(values['warmup-ms']));
  if (mode === 'source') {
    const size = Number(values.size);
    const seconds = Number(values.seconds);
    if (!values.host || !Number.isInteger(size) || size < 1 || !(seconds > 0)) {
      throw new Error(`bench/connect/udp-blast source: need --host, --size N >= 1 and --seconds S > 0, got ${values.host}, ${values.size}, ${values.seconds}`);
    }
    return source(values.host, port, size, seconds);
  }
  throw new Error(`bench/connect/udp-blast: mode ${mode}: expected sink or source`);
}

main(process.argv.slice(2)).then(
  () => { process.exit(0); },
  (error: unknown) => {
    process.stderr.write(`bench/connect/udp-blast: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(1);
  },
);
