/**
 * The measured process of the rendezvous benchmark: one RendezvousServer on 127.0.0.1 with its
 * default limits (what `natpunch serve` runs), and nothing else, so that its memory is the
 * server's own. Started with --expose-gc; answers the parent over IPC:
 *   { type: 'memory' }    -> { type: 'memory', rss, heapUsed, external, arrayBuffers, stats } (after two GCs)
 *   { type: 'snapshot' }  -> { type: 'snapshot', file } (a V8 heap snapshot in the working directory)
 * and prints "ready ws://..." once listening.
 */
import { writeHeapSnapshot } from 'node:v8';
import { RendezvousServer } from '../../src/rendezvous/index.js';

const gc = (globalThis as { gc?: () => void }).gc;

async function main(): Promise<void> {
  const server = await RendezvousServer.listen({ host: '127.0.0.1', port: 0 });
  process.on('message', (message: { type: string }) => {
    if (message.type === 'snapshot') {
      process.send!({ type: 'snapshot', file: writeHeapSnapshot() });
      return;
    }
    if (message.type !== 'memory') return;
    gc?.();
    gc?.();
    const memory = process.memoryUsage();
    process.send!({ type: 'memory', rss: memory.rss, heapUsed: memory.heapUsed, external: memory.external, arrayBuffers: memory.arrayBuffers, stats: server.stats });
  });
  process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
  process.on('disconnect', () => void server.close().then(() => process.exit(0)));
  process.stdout.write(`ready ${server.url}\n`);
}

void main().catch((error: unknown) => {
  process.stderr.write(`bench/rendezvous server: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
