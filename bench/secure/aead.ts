/**
 * bench/secure/aead: the datagram cipher's cost per datagram, sealing and opening 1170-byte
 * payloads (a 1200-byte UDP payload less the SEALED frame's overhead and a path header), with
 * the native AEAD (native/aead: one OpenSSL context per key) beside node:crypto (a cipher per
 * call), natively also opening in place, and beside the code this replaced (CipherState.encryptWithAd / decryptWithAd per
 * datagram). For reference, one 64 KiB message, as the stream sealed before every datagram had
 * its own AEAD; its "µs per 1170 B" column is its cost spread over the datagrams it filled.
 *
 * One thread, no I/O: each target runs alone for a fixed time (--duration-ms ÷ 5, at least
 * 200 ms, after --warmup-ms ÷ 10), rounds interleave targets and the best round counts. Besides
 * wall time the table gives CPU time (user + system) per operation, which other load on the
 * machine disturbs less. Native targets are skipped, saying why, without the addon.
 *
 *   node dist/bench/run.js secure [--duration-ms 5000] [--warmup-ms 3000] [--rounds 3]
 */
import { performance } from 'node:perf_hooks';
import { CipherState } from '../../src/secure/cipher-state.js';
import { createChaChaPolyKey, nativeAeadAvailable } from '../../src/secure/chachapoly-key.js';
import { DatagramCipher } from '../../src/secure/datagram-cipher.js';
import type { Benchmark, BenchmarkContext } from '../benchmark.js';
import { formatCount, formatRatio, formatTable } from '../support/table.js';

/** A stream packet's share of a 1200-byte UDP payload: 1200 - 1 (kind) - 24 (counter, tag) - 5 (path header). */
export const PAYLOAD = 1170;
const MESSAGE = 65535;
const BURST = 64;
const HEADROOM = 6;
const AD = Uint8Array.of(0x02);
const key = (seed: number): Uint8Array => Uint8Array.from({ length: 32 }, (_, i) => (i * 13 + seed) & 0xff);

interface Target {
  name: string;
  /** Datagrams (or messages) one call of `run` handles. */
  perCall: number;
  /** Payload bytes per datagram or message, for the "per 1170 B" column. */
  bytes: number;
  run(): void;
}

interface Measurement {
  target: string;
  operationsPerSecond: number;
  wallMicroseconds: number;
  cpuMicroseconds: number;
  /** CPU µs per 1170 payload bytes. */
  cpuMicrosecondsPer1170: number;
}

function datagramCipher(native: boolean, receiveSeed = 2): DatagramCipher {
  return new DatagramCipher({ send: new CipherState(key(1)), receive: new CipherState(key(receiveSeed)) }, { native });
}

/** Opening needs fresh counters (the replay window refuses repeats): a ring of sealed packets, and a new receiver per lap. */
function opener(open: () => (packet: Uint8Array) => void, seal: (plaintext: Uint8Array) => Uint8Array): () => void {
  const packets = Array.from({ length: 8192 }, () => seal(new Uint8Array(PAYLOAD).fill(7)));
  let next = 0;
  let receiver = open();
  return () => {
    if (next === packets.length) {
      next = 0;
      receiver = open();
    }
    receiver(packets[next++]!);
  };
}

/** The code this change replaced: CipherState per datagram, the counter written through a DataView. */
function before(): { seal: (plaintext: Uint8Array) => Uint8Array; open: () => (packet: Uint8Array) => void } {
  const send = new CipherState(key(1));
  return {
    seal(plaintext) {
      const counter = send.nonce;
      const out = send.encryptWithAd(AD, plaintext, HEADROOM + 8);
      const view = new DataView(out.buffer, out.byteOffset + HEADROOM, 8);
      view.setUint32(0, counter >>> 0, true);
      view.setUint32(4, Math.floor(counter / 2 ** 32), true);
      return out.subarray(HEADROOM);
    },
    open() {
      const receive = new CipherState(key(1));
      return (packet) => {
        const view = new DataView(packet.buffer, packet.byteOffset, 8);
        receive.setNonce(view.getUint32(4, true) * 2 ** 32 + view.getUint32(0, true));
        receive.decryptWithAd(AD, packet.subarray(8));
      };
    },
  };
}

function targets(native: boolean): Target[] {
  const plaintext = new Uint8Array(PAYLOAD).fill(1);
  const burst = Array.from({ length: BURST }, () => plaintext);
  const message = new Uint8Array(MESSAGE).fill(3);
  const list: Target[] = [];
  const implementations = native ? (['native', 'node:crypto'] as const) : (['node:crypto'] as const);
  for (const implementation of implementations) {
    const cipher = datagramCipher(implementation === 'native');
    list.push({ name: `seal ${PAYLOAD} B, ${implementation}`, perCall: 1, bytes: PAYLOAD, run: () => void cipher.seal(plaintext, AD, HEADROOM) });
  }
  const old = before();
  list.push({ name: `seal ${PAYLOAD} B, before (CipherState)`, perCall: 1, bytes: PAYLOAD, run: () => void old.seal(plaintext) });
  for (const implementation of implementations) {
    const cipher = datagramCipher(implementation === 'native');
    list.push({ name: `sealBatch ${BURST} x ${PAYLOAD} B, ${implementation}`, perCall: BURST, bytes: PAYLOAD, run: () => void cipher.sealBatch(burst, AD, HEADROOM) });
  }
  for (const implementation of implementations) {
    const isNative = implementation === 'native';
    const sender = datagramCipher(isNative);
    const run = opener(() => {
      const receiver = datagramCipher(isNative, 1);
      return (packet) => void receiver.open(packet, AD);
    }, (p) => sender.seal(p, AD));
    list.push({ name: `open ${PAYLOAD} B, ${implementation}`, perCall: 1, bytes: PAYLOAD, run });
  }
  if (native) {
    // In place overwrites the packet: each is first restored into a buffer made once (a copy
    // without allocation, ~0.05 µs, counted), as a received datagram arrives in its own buffer.
    const sender = datagramCipher(true);
    const work = new Uint8Array(PAYLOAD + 24);
    const run = opener(() => {
      const receiver = datagramCipher(true, 1);
      return (packet) => {
        work.set(packet);
        receiver.openInPlace(work, AD);
      };
    }, (p) => sender.seal(p, AD));
    list.push({ name: `openInPlace ${PAYLOAD} B, native`, perCall: 1, bytes: PAYLOAD, run });
  }
  list.push({ name: `open ${PAYLOAD} B, before (CipherState)`, perCall: 1, bytes: PAYLOAD, run: opener(old.open, old.seal) });
  const stream = new CipherState(key(4));
  list.push({ name: `seal 64 KiB, node:crypto (the stream before)`, perCall: 1, bytes: MESSAGE, run: () => void stream.encryptWithAd(AD, message) });
  if (native) {
    const nativeKey = createChaChaPolyKey(key(5));
    const out = new Uint8Array(MESSAGE + 16);
    let n = 0;
    list.push({ name: `seal 64 KiB, native`, perCall: 1, bytes: MESSAGE, run: () => nativeKey.sealInto(n++, AD, message, out, 0) });
  }
  return list;
}

function measure(target: Target, durationMs: number, warmupMs: number): Measurement {
  const spin = (ms: number): { calls: number; wall: number; cpu: number } => {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let calls = 0;
    let now = t0;
    while (now - t0 < ms) {
      for (let i = 0; i < 64; i++) target.run();
      calls += 64;
      now = performance.now();
    }
    const cpu = process.cpuUsage(cpu0);
    return { calls, wall: (now - t0) * 1000, cpu: cpu.user + cpu.system };
  };
  spin(warmupMs);
  const { calls, wall, cpu } = spin(durationMs);
  const operations = calls * target.perCall;
  const cpuMicroseconds = cpu / operations;
  return {
    target: target.name,
    operationsPerSecond: operations / (wall / 1e6),
    wallMicroseconds: wall / operations,
    cpuMicroseconds,
    cpuMicrosecondsPer1170: (cpuMicroseconds * PAYLOAD) / target.bytes,
  };
}

export async function runAeadBench(
  options: { durationMs: number; warmupMs: number; rounds: number },
  log: (line: string) => void,
  signal?: AbortSignal,
): Promise<{ native: string; measurements: Measurement[] }> {
  const available = nativeAeadAvailable();
  if (!available.ok) log(`native targets skipped: ${available.reason}`);
  const list = targets(available.ok);
  const durationMs = Math.max(200, options.durationMs / 5);
  const warmupMs = Math.max(50, options.warmupMs / 10);
  const best = new Map<string, Measurement>();
  for (let round = 1; round <= options.rounds; round++) {
    for (const target of list) {
      if (signal?.aborted) throw signal.reason;
      const m = measure(target, durationMs, warmupMs);
      log(`round ${round}: ${m.target}: ${m.cpuMicroseconds.toFixed(2)} µs CPU per operation`);
      const previous = best.get(m.target);
      if (!previous || m.cpuMicroseconds < previous.cpuMicroseconds) best.set(m.target, m);
      await new Promise((resolve) => setImmediate(resolve)); // let SIGINT through
    }
  }
  return { native: available.ok ? 'native' : available.reason, measurements: [...best.values()] };
}

export function formatAeadBench(result: { measurements: Measurement[] }): string {
  const find = (prefix: string): number | undefined => result.measurements.find((m) => m.target.startsWith(prefix))?.cpuMicroseconds;
  const rows = result.measurements.map((m) => [
    m.target,
    formatCount(m.operationsPerSecond),
    m.wallMicroseconds.toFixed(2),
    m.cpuMicroseconds.toFixed(2),
    m.cpuMicrosecondsPer1170.toFixed(2),
  ]);
  return (
    formatTable(['target', 'per second', 'µs wall', 'µs CPU', `µs CPU per ${PAYLOAD} B`], rows) +
    `\nnode:crypto / native, CPU per datagram: seal ${formatRatio(find(`seal ${PAYLOAD} B, node:crypto`), find(`seal ${PAYLOAD} B, native`))}` +
    `, sealBatch ${formatRatio(find(`sealBatch ${BURST} x ${PAYLOAD} B, node:crypto`), find(`sealBatch ${BURST} x ${PAYLOAD} B, native`))}` +
    `, open ${formatRatio(find(`open ${PAYLOAD} B, node:crypto`), find(`open ${PAYLOAD} B, native`))}`
  );
}

export const benchmark: Benchmark = {
  name: 'secure',
  description: `datagram AEAD per ${PAYLOAD}-byte datagram, seal and open: native/aead vs node:crypto vs before; a 64 KiB message for reference`,
  async run(context: BenchmarkContext) {
    const result = await runAeadBench(context.options, context.log, context.signal);
    process.stdout.write(formatAeadBench(result) + '\n');
    return { ...result };
  },
};
