/**
 * A real redis-server for a benchmark whose nodes share state (`natpunch serve --redis`): on a
 * free loopback port, pinned like the servers under test, nothing saved to disk. The caller
 * stops it (`server.stop()`) in a `finally`, so a failed run leaves no redis-server behind.
 */
import { BenchError, LOOPBACK, type Server, freePort, startPinned } from './process.js';

export interface BenchRedis {
  url: string;
  server: Server;
}

export async function startRedis(core: number): Promise<BenchRedis> {
  let lastError: unknown;
  // Three tries: the only failure expected is another process taking the free port first.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort(LOOPBACK);
    const server = startPinned(`redis-server :${port}`, core, 'redis-server', [
      '--port', String(port), '--bind', LOOPBACK, '--save', '', '--appendonly', 'no', '--loglevel', 'notice',
    ]);
    try {
      await server.lineMatching(/Ready to accept connections/, 10_000);
      return { url: `redis://${LOOPBACK}:${port}`, server };
    } catch (error) {
      lastError = error;
      await server.stop();
    }
  }
  throw new BenchError('redis-server: did not start in 3 tries (is it installed? apt-get install redis-server)', { cause: lastError });
}
