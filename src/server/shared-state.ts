/**
 * The state several `natpunch serve` nodes share (`--redis URL`): the rendezvous registry and
 * the signal bus, both on one Redis. Opened before the node takes its ports, so an unreachable
 * Redis fails the start with one line naming the URL and the cause.
 * @see docs/decisions/016-redis.md
 */
import { hostname } from 'node:os';
import { debuglog } from 'node:util';
import { connectRedis } from '../rendezvous/redis-client.js';
import { RedisRegistry } from '../rendezvous/redis-registry.js';
import { RedisSignalBus } from '../rendezvous/redis-signal-bus.js';

const debug = debuglog('natpunch:redis');

export interface SharedStateOptions {
  url: string;
  /** This node's name (default hostname:pid): unique among the nodes sharing the Redis. */
  nodeName?: string;
  registryTtlMs?: number;
  prefix?: string;
}

export interface SharedState {
  registry: RedisRegistry;
  bus: RedisSignalBus;
  close(): Promise<void>;
}

export function defaultNodeName(): string {
  return `${hostname()}:${process.pid}`;
}

export async function openSharedState(options: SharedStateOptions): Promise<SharedState> {
  const client = await connectRedis({ url: options.url, onError: (error) => debug('redis: %s', error.message) });
  const node = options.nodeName ?? defaultNodeName();
  let bus: RedisSignalBus;
  try {
    bus = await RedisSignalBus.open({ client, node, ...(options.prefix ? { prefix: options.prefix } : {}) });
  } catch (error) {
    client.destroy();
    throw error;
  }
  const registry = new RedisRegistry({ client, ...(options.registryTtlMs ? { ttlMs: options.registryTtlMs } : {}), ...(options.prefix ? { prefix: options.prefix } : {}) });
  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    await registry.close();
    await bus.close();
    // Pending commands (the last unregistrations) are answered before the connection goes.
    if (client.isOpen) await client.close().catch(() => undefined);
  };
  return { registry, bus, close: () => (closing ??= close()) };
}
