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
