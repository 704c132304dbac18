/**
 * Who is registered where. The server keeps its sockets to itself; the registry only maps a peer
 * id to the record of its live registration, so that a shared store (Redis: redis-registry.ts)
 * lets several server nodes find each other's peers. Methods are async for that reason.
 */

export interface PeerRecord {
  peerId: string;
  /** Which socket holds the registration: unique per server node and connection. */
  connectionId: string;
  /** Which server node holds the socket (for a shared registry; in-memory: always 'local'). */
  node: string;
  srflx: string | null;
  privateEndpoints: string[];
  registeredAt: number;
  /** What the server's dial-back found at registration (absent without dial-back). */
  reachable?: { udp: boolean; tcp: boolean };
  /** The protocol version and capabilities it registered with: another node pairs peers by them. */
  version?: number;
  capabilities?: readonly string[];
}

export interface Registry {
  /**
   * Stores `record` as the live registration of its peer id and returns the one it replaced
   * (one live registration per peer id: the newer wins). Throws nothing for a full registry:
   * the server checks `size` first.
   */
  register(record: PeerRecord): Promise<PeerRecord | undefined>;
  lookup(peerId: string): Promise<PeerRecord | undefined>;
  /** Removes the registration only if it still belongs to `connectionId`; true if it did. */
  unregister(peerId: string, connectionId: string): Promise<boolean>;
  /**
   * Registrations this node holds (maxPeers bounds them: it protects this node's memory). In
   * memory that is every registration; in a shared registry only the ones made through it.
   */
  size(): Promise<number>;
  close(): Promise<void>;
}

/**
 * The default registry: a Map in this process. Entries live as long as their socket, and the
 * sockets as long as the process: no TTL is needed (a shared registry has one, see
 * redis-registry.ts). Several servers in one process may share one (each names its own node).
 */
export class InMemoryRegistry implements Registry {
  readonly #peers = new Map<string, PeerRecord>();

  async register(record: PeerRecord): Promise<PeerRecord | undefined> {
    const previous = this.#peers.get(record.peerId);
    this.#peers.set(record.peerId, { ...record, privateEndpoints: [...record.privateEndpoints] });
    return previous;
  }

  async lookup(peerId: string): Promise<PeerRecord | undefined> {
    return this.#peers.get(peerId);
  }

  async unregister(peerId: string, connectionId: string): Promise<boolean> {
    if (this.#peers.get(peerId)?.connectionId !== connectionId) return false;
    return this.#peers.delete(peerId);
  }

  async size(): Promise<number> {
    return this.#peers.size;
  }

  async close(): Promise<void> {
    this.#peers.clear();
  }
}
