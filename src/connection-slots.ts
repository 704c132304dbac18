/**
 * Connection slots of a listener: a bound on connections in all and per source IP address, and
 * which connection gives way when all slots are taken. Used by the STUN/TURN TCP and TLS
 * listeners (src/stun/server.ts) and the HTTP listeners (src/server/http-limits.ts); the
 * reasoning is in docs/decisions/014-server-limits.md.
 *
 * Over the per-address cap a new connection is refused: one address cannot take every slot.
 * When every slot is taken, the connection that has gone longest without making progress (as
 * its owner reports with `progress`) and may be evicted gives way to the newcomer. Refusing the
 * newcomer instead would let anyone who opens `max` connections and keeps them barely alive
 * (slowloris) lock every legitimate client out for as long as they like; with eviction an
 * attacker must keep opening connections faster than clients arrive, and a client that has
 * just arrived is the last to be evicted.
 */

/** What a slot holds: anything that can be closed at once (a net.Socket). */
export interface Closable {
  destroy(): void;
}

export interface ConnectionSlotsOptions {
  /** Connections in all. */
  max: number;
  /** Connections from one IP address. */
  maxPerAddress: number;
}

export type Admission = 'admitted' | 'evicted' | 'over-address-cap' | 'full';

export class ConnectionSlots<T extends Closable> {
  readonly max: number;
  readonly maxPerAddress: number;
  /** Connections by address, in order of their last progress: the first is the stalest. */
  readonly #order = new Map<T, { address: string; evictable: boolean }>();
  readonly #perAddress = new Map<string, number>();

  constructor(options: ConnectionSlotsOptions) {
    for (const [name, value] of Object.entries(options)) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`connection slots: ${name} ${value}; expected an integer >= 1`);
    }
    this.max = options.max;
    this.maxPerAddress = options.maxPerAddress;
  }

  /** Connections holding a slot now. */
  get size(): number {
    return this.#order.size;
  }

  /** Connections from `address` holding a slot now. */
  count(address: string): number {
    return this.#perAddress.get(address) ?? 0;
  }

  /**
   * A new connection from `address`. 'admitted' or 'evicted' (another connection was destroyed
   * to make room): it holds a slot until `release`. 'over-address-cap' or 'full': it holds none,
   * and the caller closes it.
   */
  admit(connection: T, address: string): Admission {
    if (this.count(address) >= this.maxPerAddress) return 'over-address-cap';
    let admission: Admission = 'admitted';
    if (this.#order.size >= this.max) {
      const victim = this.#stalest();
      if (victim === undefined) return 'full';
      this.release(victim);
      victim.destroy();
      admission = 'evicted';
    }
    this.#order.set(connection, { address, evictable: true });
    this.#perAddress.set(address, this.count(address) + 1);
    return admission;
  }

  /** The connection made progress (a whole message arrived): it becomes the last to be evicted. */
  progress(connection: T): void {
    const slot = this.#order.get(connection);
    if (slot === undefined) return;
    this.#order.delete(connection);
    this.#order.set(connection, slot);
  }

  /** Whether the connection may be evicted (e.g. not once it became a WebSocket). */
  setEvictable(connection: T, evictable: boolean): void {
    const slot = this.#order.get(connection);
    if (slot !== undefined) slot.evictable = evictable;
  }

  /** The connection closed: its slot is free. Safe to call more than once. */
  release(connection: T): void {
    const slot = this.#order.get(connection);
    if (slot === undefined) return;
    this.#order.delete(connection);
    const left = this.count(slot.address) - 1;
    if (left > 0) this.#perAddress.set(slot.address, left);
    else this.#perAddress.delete(slot.address);
  }

  #stalest(): T | undefined {
    for (const [connection, slot] of this.#order) if (slot.evictable) return connection;
    return undefined;
  }
}
