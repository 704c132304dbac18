/**
 * The registry several rendezvous nodes share, in Redis: one key per peer id holding its live
 * registration as JSON, with a TTL. The node holding the socket refreshes the TTL while the
 * socket lives (every ttl/3), so a node that dies (SIGKILL, a lost host) leaves no route to it
 * for longer than `ttlMs`: its peers re-register elsewhere and replace their entries at once,
 * and any other entry of it expires.
 *
 * Every change is one atomic step in Redis: replace-and-return-the-previous is SET ... GET;
 * "delete only if still mine" and "extend only if still mine" are small Lua scripts. A node that
 * lost its registration to a newer one (same peer id, any node) can therefore neither delete nor
 * extend the newer entry.
 * @see docs/decisions/016-redis.md
 */
import { debuglog } from 'node:util';
import type { PeerRecord, Registry } from './registry.js';
import type { RedisConnection } from './redis-client.js';

const debug = debuglog('natpunch:registry');

export interface RedisRegistryOptions {
  /** A connected client (redis-client.ts connectRedis); the registry does not close it. */
  client: RedisConnection;
  /** How long an entry outlives its last refresh, ms (default 10 s; at least 300). */
  ttlMs?: number;
  /** Prefix of the keys (default "natpunch:"): several deployments (or tests) can share one Redis. */
  prefix?: string;
}

export const DEFAULT_REGISTRY_TTL_MS = 10_000;

/** Deletes KEYS[1] if its record's connectionId is ARGV[1]. */
const UNREGISTER = `
local current = redis.call('GET', KEYS[1])
if current and cjson.decode(current).connectionId == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0`;

/**
 * Extends KEYS[1] by ARGV[3] ms if its record's connectionId is ARGV[2]; sets it to ARGV[1] if it
 * is gone (it expired while this node could not reach Redis, and the socket is still here).
 * Returns 0 when another registration holds the key: this one was replaced.
 */
const REFRESH = `
local current = redis.call('GET', KEYS[1])
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return 1
end
if cjson.decode(current).connectionId == ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0`;

export class RedisRegistry implements Registry {
  readonly ttlMs: number;
  readonly #client: RedisConnection;
  readonly #prefix: string;
  /** What this node registered and keeps alive: peer id → record. */
  readonly #held = new Map<string, PeerRecord>();
  readonly #timer: NodeJS.Timeout;
  #refreshing = false;

  constructor(options: RedisRegistryOptions) {
    this.#client = options.client;
    this.ttlMs = Math.max(300, options.ttlMs ?? DEFAULT_REGISTRY_TTL_MS);
    this.#prefix = options.prefix ?? 'natpunch:';
    // Three refreshes per TTL: one lost or late refresh does not expire a live entry.
    this.#timer = setInterval(() => void this.#refreshAll(), Math.floor(this.ttlMs / 3));
    this.#timer.unref();
  }

  async register(record: PeerRecord): Promise<PeerRecord | undefined> {
    const copy = { ...record, privateEndpoints: [...record.privateEndpoints] };
    const previous = await this.#client.sendCommand<string | null>(['SET', this.#key(record.peerId), JSON.stringify(copy), 'PX', String(this.ttlMs), 'GET']);
    this.#held.set(record.peerId, copy);
    return parseRecord(previous);
  }

  async lookup(peerId: string): Promise<PeerRecord | undefined> {
    return parseRecord(await this.#client.sendCommand<string | null>(['GET', this.#key(peerId)]));
  }

  async unregister(peerId: string, connectionId: string): Promise<boolean> {
    if (this.#held.get(peerId)?.connectionId === connectionId) this.#held.delete(peerId);
    const deleted = await this.#client.sendCommand<number>(['EVAL', UNREGISTER, '1', this.#key(peerId), connectionId]);
    return deleted === 1;
  }

  /** The registrations this node holds (maxPeers is a limit per node). */
  async size(): Promise<number> {
    return this.#held.size;
  }

  /** Stops refreshing; the entries expire within the TTL (the server unregisters its sockets first on a clean shutdown). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#held.clear();
  }

  /** Extends every entry this node holds; drops the ones another registration took over. */
  async #refreshAll(): Promise<void> {
    if (this.#refreshing) return;
    this.#refreshing = true;
    try {
      // Issued together: the client pipelines them into one round trip.
      await Promise.all([...this.#held.values()].map(async (record) => {
        const kept = await this.#client.sendCommand<number>(['EVAL', REFRESH, '1', this.#key(record.peerId), JSON.stringify(record), record.connectionId, String(this.ttlMs)]);
        if (kept === 0 && this.#held.get(record.peerId) === record) this.#held.delete(record.peerId);
      }));
    } catch (error) {
      // Redis away: the next round tries again; entries live ttlMs past the last success.
      debug('refresh: %s', (error as Error).message);
    } finally {
      this.#refreshing = false;
    }
  }

  #key(peerId: string): string {
    return `${this.#prefix}peer:${peerId}`;
  }
}

function parseRecord(text: string | null | undefined): PeerRecord | undefined {
  if (typeof text !== 'string') return undefined;
  try {
    const record = JSON.parse(text) as PeerRecord;
    return typeof record?.peerId === 'string' && typeof record.connectionId === 'string' && typeof record.node === 'string' ? record : undefined;
  } catch {
    return undefined;
  }
}
