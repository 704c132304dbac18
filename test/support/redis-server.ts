/**
 * A real redis-server for a test: on a free loopback port, nothing saved to disk, killed by
 * stop() (call it in a `finally` or t.after, so a failing test leaves no server behind).
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { ProcessOutput, localHost, stopProcess } from './process.js';

export interface TestRedis {
  url: string;
  port: number;
  /** A key prefix of its own, so tests never see each other's keys even on a shared server. */
  prefix: string;
  output: ProcessOutput;
  stop(): Promise<void>;
}

/** A port the kernel just handed out and took back: free unless someone takes it meanwhile (then start() tries again). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function startRedis(): Promise<TestRedis> {
  let lastError: unknown;
  // Three tries: the only failure expected is another process taking the free port first.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = localHost.spawn(['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'notice']);
    const output = new ProcessOutput(child, `redis-server :${port}`);
    try {
      await output.waitFor([/Ready to accept connections/]);
    } catch (error) {
      lastError = error;
      await stopProcess(child);
      continue;
    }
    return {
      url: `redis://127.0.0.1:${port}`, port, prefix: `test-${randomBytes(4).toString('hex')}:`, output,
      stop: () => stopProcess(child),
    };
  }
  throw lastError;
}
