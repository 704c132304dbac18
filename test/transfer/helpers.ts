import { createServer, connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/** Two ends of a real loopback TCP connection, half-open allowed: a reliable ordered byte stream whose directions end apart, as a Connection's do. */
export async function socketPair(t: TestContext): Promise<[Socket, Socket]> {
  const server = createServer({ allowHalfOpen: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepted = once(server, 'connection');
  const a = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  const [b] = (await accepted) as [Socket];
  await once(a, 'connect').catch(() => undefined);
  server.close();
  t.after(() => { a.destroy(); b.destroy(); });
  return [a, b];
}

export async function tempDir(t: TestContext, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `natpunch-${prefix}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
