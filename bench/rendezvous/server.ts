/**
 * The measured process of the rendezvous benchmark: one RendezvousServer on 127.0.0.1 with its
 * default limits (what `natpunch serve` runs), and nothing else, so that its memory is the
 * server's own. With argv[2] = JSON { redis: { url, node, prefix } } it is one of several nodes
 * sharing the registry and signal bus on that Redis, opened as `natpunch serve --redis` opens
 * them (openSharedState). Started with --expose-gc; answers the parent over IPC:
 *   { type: 'memory' }    -> { type: 'memory', rss, heapTotal, heapUsed, external, arrayBuffers, newSpace, stats } (after two GCs;
 *                            newSpace: the V8 young generation's size, which grows under load and is not per peer)
 *   { type: 'snapshot' }  -> { type: 'snapshot', file } (a V8 heap snapshot in the working directory)
 * and prints "ready ws://..." once listening.
 */
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import { RendezvousServer } from '../../src/rendezvous/index.js';
import { type SharedState, openSharedState } from '../../src/server/shared-state.js';

const gc = (globalThis as { gc?: () => void }).gc;

interface Config {
  redis?: { url: string; node: string; prefix: string };
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as Config;
  const shared: SharedState | undefined = config.redis
    ? await openSharedState({ url: config.redis.url, nodeName: config.redis.node, prefix: config.redis.prefix })
    : undefined;
  const server = await RendezvousServer.listen({
    host: '127.0.0.1', port: 0, ...(shared ? { registry: shared.registry, bus: shared.bus, nodeId: shared.bus.node } : {}),
  });
  process.on('message', (message: { type: string }) => {
    if (message.type === 'snapshot') {
      process.send!({ type: 'snapshot', file: writeHeapSnapshot() });
      return;
    }
    if (message.type !== 'memory') return;
    gc?.();
    gc?.();
    const memory = process.memoryUsage();
    const newSpace = getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size ?? 0;
    process.send!({ type: 'memory', rss: memory.rss, heapTotal: memory.heapTotal, heapUsed: memory.heapUsed, external: memory.external, arrayBuffers: memory.arrayBuffers, newSpace, stats: server.stats });
  });
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void server.close().then(() => shared?.close()).finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('disconnect', stop);
  process.stdout.write(`ready ${server.url}\n`);
}

void main().catch((error: unknown) => {
  process.stderr.write(`bench/rendezvous server: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
