import { within, type WaitOptions } from './wait.js';

/**
 * Everything `stream` yields until it ends, as one Buffer. Bounded: a transfer that stalls fails
 * saying how many bytes had arrived, instead of waiting for the runner's per-test timeout.
 * (`for await` destroys the stream at its end; test/transport/helpers.ts has a reader that doesn't.)
 */
export function readAll(stream: AsyncIterable<Buffer | Uint8Array | string>, options: WaitOptions = {}): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let received = 0;
  const all = (async () => {
    for await (const chunk of stream) {
      const bytes = Buffer.from(chunk);
      chunks.push(bytes);
      received += bytes.length;
    }
    return Buffer.concat(chunks);
  })();
  return within(all, `the end of a ${stream.constructor.name}`, { timeoutMs: 60_000, seen: () => `${received} bytes`, ...options });
}

/** The next `n` bytes from a stream that stays open (any surplus is put back). */
export function readExactly(stream: import('node:stream').Readable, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      length += chunk.length;
      if (length < n) return;
      stream.off('data', onData);
      stream.off('error', reject);
      const all = Buffer.concat(chunks);
      if (all.length > n) stream.unshift(all.subarray(n));
      resolve(all.subarray(0, n));
    };
    stream.on('data', onData);
    stream.once('error', reject);
  });
}
