/**
 * A paced byte source and a measuring sink, run as programs in lab hosts around `natpunch
 * connect` / `listen`, for transfers that must go on while the network changes under them.
 *
 *   node paced-stream.js source BYTES SECONDS SEED   deterministic bytes to stdout, evenly over SECONDS
 *   node paced-stream.js sink FILE                    reads stdin; at its end writes FILE:
 *     {"bytes":N,"sha256":HEX,"maxGapMs":N,"firstAt":MS,"lastAt":MS}
 *
 * maxGapMs is the longest time between two reads once the first byte came: the stall a user
 * would see. The bytes are pseudoRandom(seed), so the test knows the digest without a file.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const PACED_STREAM = fileURLToPath(import.meta.url);
const CHUNK = 64 * 1024;

/** The bytes `source` writes for `seed`: xorshift32, cheap and reproducible. */
export function pacedBytes(bytes: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export interface SinkReport {
  bytes: number;
  sha256: string;
  maxGapMs: number;
  firstAt: number;
  lastAt: number;
}

async function source(bytes: number, seconds: number, seed: number): Promise<void> {
  const data = pacedBytes(bytes, seed);
  const chunks = Math.ceil(bytes / CHUNK);
  const start = performance.now();
  for (let i = 0; i < chunks; i++) {
    const due = start + (i * seconds * 1000) / chunks;
    const wait = due - performance.now();
    if (wait > 0) await delay(wait);
    if (!process.stdout.write(data.subarray(i * CHUNK, (i + 1) * CHUNK))) await new Promise((resolve) => process.stdout.once('drain', resolve));
  }
  process.stdout.end();
}

function sink(file: string): void {
  const hash = createHash('sha256');
  let bytes = 0;
  let firstAt = 0;
  let lastAt = 0;
  let maxGapMs = 0;
  process.stdin.on('data', (chunk: Buffer) => {
    const now = Date.now();
    if (bytes === 0) firstAt = now;
    else maxGapMs = Math.max(maxGapMs, now - lastAt);
    lastAt = now;
    bytes += chunk.length;
    hash.update(chunk);
  });
  process.stdin.on('end', () => {
    const report: SinkReport = { bytes, sha256: hash.digest('hex'), maxGapMs, firstAt, lastAt };
    writeFileSync(file, JSON.stringify(report));
  });
}

if (process.argv[1] === PACED_STREAM) {
  const [mode, ...args] = process.argv.slice(2);
  if (mode === 'source') void source(Number(args[0]), Number(args[1]), Number(args[2]));
  else if (mode === 'sink') sink(args[0]!);
  else {
    process.stderr.write('usage: paced-stream.js source BYTES SECONDS SEED | sink FILE\n');
    process.exit(2);
  }
}
