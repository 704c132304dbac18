/**
 * An in-process datagram link between two DatagramPaths with seeded loss, duplication and
 * reordering. Decisions come from a deterministic PRNG, so a failing seed replays the same
 * pattern of drops; delivery is asynchronous (end of the current I/O batch), like a socket.
 */
import type { DatagramPath } from '../../src/transport/datagram-path.js';

export interface Impairment {
  /** Probability a datagram is dropped. */
  loss?: number;
  /** Probability a datagram is delivered twice. */
  duplicate?: number;
  /** Probability a datagram is held back and delivered after the next batch. */
  reorder?: number;
}

export interface LossyLinkOptions extends Impairment {
  seed: number;
  maxPayload?: number;
}

export interface DirectionStats {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  reordered: number;
}

export interface LossyLink {
  /** End A: what A sends arrives at B. */
  readonly a: DatagramPath;
  readonly b: DatagramPath;
  readonly stats: { aToB: DirectionStats; bToA: DirectionStats };
  /** From now on drop everything, both ways (the path died). */
  cut(): void;
  /** Change the impairment of both directions. */
  impair(impairment: Impairment): void;
}

/** mulberry32: small, fast, good enough to pick drops. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Direction {
  readonly stats: DirectionStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, reordered: 0 };
  readonly #random: () => number;
  impairment: Impairment;
  cut = false;
  #queue: Uint8Array[] = [];
  #held: Uint8Array[] = [];
  #scheduled = false;
  #handlers: Array<(datagram: Uint8Array) => void> = [];

  constructor(seed: number, impairment: Impairment) {
    this.#random = seededRandom(seed);
    this.impairment = impairment;
  }

  onDatagram(handler: (datagram: Uint8Array) => void): void {
    this.#handlers.push(handler);
  }

  send(datagram: Uint8Array): void {
    this.stats.sent++;
    if (this.cut) {
      this.stats.dropped++;
      return;
    }
    this.#queue.push(Uint8Array.from(datagram));
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#drain());
  }

  #drain(): void {
    this.#scheduled = false;
    const batch = this.#queue;
    const held = this.#held;
    this.#queue = [];
    this.#held = [];
    const { loss = 0, duplicate = 0, reorder = 0 } = this.impairment;
    for (const datagram of batch) {
      if (this.cut || this.#random() < loss) {
        this.stats.dropped++;
        continue;
      }
      if (this.#random() < reorder) {
        this.stats.reordered++;
        this.#held.push(datagram);
        continue;
      }
      this.#deliver(datagram);
      if (this.#random() < duplicate) {
        this.stats.duplicated++;
        this.#deliver(datagram);
      }
    }
    // Held-back datagrams arrive after the newer ones of this batch.
    for (const datagram of held) if (!this.cut) this.#deliver(datagram);
    if (this.#held.length > 0) this.#schedule();
  }

  #deliver(datagram: Uint8Array): void {
    this.stats.delivered++;
    for (const handler of this.#handlers) handler(datagram);
  }
}

export function createLossyLink(options: LossyLinkOptions): LossyLink {
  const maxPayload = options.maxPayload ?? 1200;
  const impairment: Impairment = { loss: options.loss, duplicate: options.duplicate, reorder: options.reorder };
  const aToB = new Direction(options.seed, impairment);
  const bToA = new Direction(options.seed ^ 0x5bd1e995, impairment);
  const end = (outgoing: Direction, incoming: Direction): DatagramPath => ({
    maxPayload,
    send: (datagram) => outgoing.send(datagram),
    onDatagram: (handler) => incoming.onDatagram(handler),
  });
  return {
    a: end(aToB, bToA),
    b: end(bToA, aToB),
    stats: { aToB: aToB.stats, bToA: bToA.stats },
    cut() {
      aToB.cut = true;
      bToA.cut = true;
    },
    impair(next) {
      aToB.impairment = next;
      bToA.impairment = next;
    },
  };
}
