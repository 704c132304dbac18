import type { Writable } from 'node:stream';

/**
 * Resolve once each stream's end has been acknowledged ('finish') or `ms` has passed. Before
 * peer.close(): it closes the UDP socket at once, and the GO_AWAY and FIN still in flight would
 * never reach the other side, which would then wait for its idle timeout instead of knowing.
 */
export async function flushed(streams: Iterable<Writable>, ms = 1_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); });
  const ends = [...streams].filter((s) => !s.writableFinished && !s.destroyed)
    .map((s) => new Promise<void>((resolve) => { s.once('finish', resolve); s.once('close', resolve); }));
  await Promise.race([Promise.all(ends), deadline]);
  clearTimeout(timer);
}
