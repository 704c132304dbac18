/**
 * The signal bus over Redis pub/sub: each node subscribes to its own channel
 * (`natpunch:node:NAME`), and a message for a socket on node N is PUBLISHed there.
 *
 * Why pub/sub and not streams: a message is only of use to the node holding the target's socket,
 * and only while that socket lives. If that node is gone there is nobody to deliver to later, so
 * a stream's persistence would keep messages no one reads; pub/sub drops them and PUBLISH tells
 * how many nodes received it, so the sender learns at once that nobody did. Between two nodes,
 * messages arrive in the order sent (one connection each way). Plain PUBLISH works on any Redis;
 * on a Redis Cluster, sharded pub/sub (SPUBLISH, Redis 7) would keep each channel on one shard.
 * @see docs/decisions/016-redis.md
 */
import { debuglog } from 'node:util';
import { type BusMessage, type SignalBus, parseBusMessage } from './signal-bus.js';
import type { RedisConnection } from './redis-client.js';

const debug = debuglog('natpunch:bus');

export interface RedisSignalBusOptions {
  /** A connected client, used to publish; the bus makes its own subscriber from it (duplicate). */
  client: RedisConnection;
  /** This node's name, unique among the nodes sharing the Redis. */
  node: string;
  /** Channel prefix (default "natpunch:"), as the registry's key prefix. */
  prefix?: string;
}

export class RedisSignalBus implements SignalBus {
  readonly node: string;
  readonly #client: RedisConnection;
  readonly #subscriber: RedisConnection;
  readonly #prefix: string;
  #handler: ((message: BusMessage) => void) | undefined;

  private constructor(options: RedisSignalBusOptions, subscriber: RedisConnection) {
    this.node = options.node;
    this.#client = options.client;
    this.#subscriber = subscriber;
    this.#prefix = options.prefix ?? 'natpunch:';
  }

  /** Subscribes this node's channel before resolving: no message sent to it after that is missed. */
  static async open(options: RedisSignalBusOptions): Promise<RedisSignalBus> {
    // A subscribed connection can do nothing else: a second one, made like the first.
    const subscriber = options.client.duplicate();
    subscriber.on('error', (error: Error) => debug('subscriber: %s', error.message));
    await subscriber.connect();
    const bus = new RedisSignalBus(options, subscriber);
    try {
      await subscriber.subscribe(bus.#channel(options.node), (text: string) => bus.#receive(text));
    } catch (error) {
      subscriber.destroy();
      throw error;
    }
    return bus;
  }

  async send(node: string, message: BusMessage): Promise<boolean> {
    const receivers = await this.#client.sendCommand<number>(['PUBLISH', this.#channel(node), JSON.stringify(message)]);
    return receivers > 0;
  }

  listen(handler: (message: BusMessage) => void): void {
    this.#handler = handler;
  }

  async close(): Promise<void> {
    this.#handler = undefined;
    try {
      await this.#subscriber.close();
    } catch {
      this.#subscriber.destroy();
    }
  }

  #receive(text: string): void {
    const message = parseBusMessage(text);
    if (!message) {
      debug('dropped a malformed bus message (%d bytes)', text.length);
      return;
    }
    this.#handler?.(message);
  }

  #channel(node: string): string {
    return `${this.#prefix}node:${node}`;
  }
}
