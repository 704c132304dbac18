/** Shared helpers for the transport tests: deterministic payloads, pumping and draining streams. */
import { createHash } from 'node:crypto';
import { once, until as untilWithin, within } from '../support/wait.js';
import type { Duplex, Readable, Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { DatagramPath } from '../../src/transport/datagram-path.js';
import { seededRandom } from './lossy-link.js';

/** `length` bytes from a seeded PRNG, so every run sends the same payload. */
export function pseudoRandomBytes(length: number, seed: number): Buffer {
  const random = seededRandom(seed);
  const bytes = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i += 4) {
    const word = (random() * 4294967296) >>> 0;
    for (let j = 0; j < 4 && i + j < length; j++) bytes[i + j] = (word >>> (8 * j)) & 0xff;
  }
  return bytes;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Writes `data` in `chunkSize` pieces, waiting for 'drain' whenever write() says so; then ends. */
export async function writeAll(stream: Writable, data: Uint8Array, options: { chunkSize?: number; end?: boolean } = {}): Promise<void> {
  const chunkSize = options.chunkSize ?? 64 * 1024;
  for (let at = 0; at < data.length; at += chunkSize) {
    if (!stream.write(data.subarray(at, Math.min(data.length, at + chunkSize)))) {
      await once(stream, 'drain');
    }
  }
  if (options.end ?? true) stream.end();
}

/**
 * Collects everything until 'end'; rejects on 'error'. Uses 'data' events rather than
 * `for await`, whose iterator destroys the stream at the end, which would abort our write side.
 */
export function readAll(stream: Readable, timeoutMs = 60_000): Promise<Buffer> {
  let received = 0;
  const all = new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => { chunks.push(chunk); received += chunk.length; });
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
  return within(all, `'end' of ${stream.constructor.name}`, { timeoutMs, seen: () => `${received} bytes` });
}

/** Resolves once the stream has emitted 'close' (at once if it already has). */
export async function closed(stream: Readable | Writable): Promise<void> {
  if (stream.closed) return;
  await once(stream, 'close');
}

/** Waits until `condition()` holds, checking after each turn of the event loop; fails after `timeoutMs`. */
export function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  return untilWithin(condition, what, { timeoutMs, intervalMs: 0 });
}

/** Destroys the streams when the test ends, pass or fail, so a failed test leaves no timers running. */
export function cleanUp(t: TestContext, ...streams: Duplex[]): void {
  t.after(() => {
    for (const stream of streams) stream.destroy();
  });
}

export interface FramedCounts {
  send: number;
  sendWithHeadroom: number;
  batches: number;
  batched: number;
  largestBatch: number;
  largestDatagram: number;
}

/**
 * `path` behind a path header of `headroom` bytes, as src/peer/udp-path.ts puts its connection
 * id in front of each datagram: sendWithHeadroom (and, with `batch`, sendBatch) fill the header
 * with 0xee, which must not disturb the packet behind it, and send the rest over `path`.
 */
export function framedPath(path: DatagramPath, headroom: number, options: { batch?: boolean } = {}): DatagramPath & { counts: FramedCounts } {
  const counts: FramedCounts = { send: 0, sendWithHeadroom: 0, batches: 0, batched: 0, largestBatch: 0, largestDatagram: 0 };
  const unwrap = (buffer: Uint8Array): Uint8Array => {
    assert.ok(buffer.length > headroom);
    buffer.fill(0xee, 0, headroom);
    const datagram = buffer.subarray(headroom);
    counts.largestDatagram = Math.max(counts.largestDatagram, datagram.length);
    return datagram;
  };
  const framed: DatagramPath & { counts: FramedCounts } = {
    counts,
    maxPayload: path.maxPayload,
    headroom,
    send(datagram) {
      counts.send++;
      counts.largestDatagram = Math.max(counts.largestDatagram, datagram.length);
      path.send(datagram);
    },
    sendWithHeadroom(buffer) {
      counts.sendWithHeadroom++;
      path.send(unwrap(buffer));
    },
    onDatagram: (handler) => path.onDatagram(handler),
  };
  if (options.batch === true) {
    framed.sendBatch = (buffers) => {
      counts.batches++;
      counts.batched += buffers.length;
      counts.largestBatch = Math.max(counts.largestBatch, buffers.length);
      for (const buffer of buffers) path.send(unwrap(buffer));
    };
  }
  return framed;
}
