/**
 * Connections to the Redis server that several rendezvous nodes share (the registry and the
 * signal bus). The first connection must succeed: a node that cannot reach Redis at startup
 * fails with one line naming the URL and the cause, rather than serving peers that no other node
 * can find. Once up, a lost connection is retried with backoff for as long as the node runs
 * (commands wait meanwhile, bounded by `commandTimeoutMs`).
 */
import type { createClient } from '@redis/client';
import { NatpunchError } from '../errors.js';

export type RedisConnection = ReturnType<typeof createClient>;

export interface RedisConnectOptions {
  /** redis://[user:password@]host[:port][/db], or rediss:// for TLS. */
  url: string;
  /** How long the first connection may take (default 5 s). */
  connectTimeoutMs?: number;
  /** A command not answered this long fails (default 5 s): a registration never hangs on Redis. */
  commandTimeoutMs?: number;
  /** Reported when the connection drops or comes back (default: ignored; the client retries by itself). */
  onError?: (error: Error) => void;
}

/** The Redis URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

/**
 * A connected client, or a NatpunchError ERR_REDIS saying which URL failed and why (the first
 * connection is not retried: a wrong URL or a Redis that is down should be said at once).
 */
export async function connectRedis(options: RedisConnectOptions): Promise<RedisConnection> {
  const where = redactUrl(options.url);
  let ready = false;
  let first: Error | undefined;
  let client: RedisConnection;
  // Loaded here, not on import: the client is hundreds of modules (a third of a second of CPU)
  // that every command but `serve --redis` would load for nothing.
  const redis = await import('@redis/client');
  try {
    client = redis.createClient({
      url: options.url,
      commandOptions: { timeout: options.commandTimeoutMs ?? 5_000 },
      socket: {
        connectTimeout: options.connectTimeoutMs ?? 5_000,
        // Before the first success: give up (the caller reports it). After: 100 ms doubling to 2 s.
        reconnectStrategy: (retries, cause) => (ready ? Math.min(2_000, 100 * 2 ** Math.min(retries, 5)) : cause),
      },
    });
  } catch (error) {
    throw new NatpunchError('ERR_REDIS', `Redis ${where}: ${(error as Error).message}; expected redis://HOST[:PORT][/DB]`, { cause: error });
  }
  // Without a listener, an 'error' event would crash the process.
  client.on('error', (error: Error) => {
    first ??= error;
    if (ready) options.onError?.(error);
  });
  try {
    await client.connect();
  } catch (error) {
    const cause = (first ?? error) as Error & { code?: string };
    // Already closed by the reconnect strategy's refusal, unless the failure came before.
    if (client.isOpen) client.destroy();
    throw new NatpunchError('ERR_REDIS', `cannot reach Redis at ${where}: ${describe(cause)}; check that redis-server runs there and the URL (--redis)`, { cause });
  }
  ready = true;
  return client;
}

function describe(error: Error & { code?: string }): string {
  switch (error.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `the host name does not resolve (${error.code})`;
    default:
      return error.code ? `${error.message} (${error.code})` : error.message;
  }
}
