/**
 * A link between a node and its upstream router: one-way latency, jitter and random loss, the
 * same in both directions. Jitter is what reorders: two datagrams sent 1 ms apart over a link
 * with 5 ms of jitter arrive in either order. Loss and jitter draw from the link's own seeded
 * stream (src/sim/prng.ts).
 */
import { SimError } from '../errors.js';
import type { Prng } from './prng.js';

export interface LinkOptions {
  /** One-way delay in ms (default 0: delivered on the next scheduler turn). */
  latencyMs?: number;
  /** Extra one-way delay drawn uniformly from [0, jitterMs) per datagram (default 0). */
  jitterMs?: number;
  /** Probability in [0, 1] that a datagram is lost, per direction (default 0). */
  loss?: number;
}

export class Link {
  latencyMs: number;
  jitterMs: number;
  loss: number;
  readonly #prng: Prng;

  constructor(options: LinkOptions, prng: Prng) {
    this.latencyMs = options.latencyMs ?? 0;
    this.jitterMs = options.jitterMs ?? 0;
    this.loss = options.loss ?? 0;
    if (!(this.latencyMs >= 0) || !(this.jitterMs >= 0)) throw new SimError(`link: latencyMs ${this.latencyMs}, jitterMs ${this.jitterMs}; expected numbers ≥ 0`);
    if (!(this.loss >= 0 && this.loss <= 1)) throw new SimError(`link: loss ${this.loss}, expected a probability from 0 to 1`);
    this.#prng = prng;
  }

  /** The delay for one datagram, or undefined when it is lost. Draws the same numbers whatever the settings, so changing one does not reshuffle the rest. */
  transit(): number | undefined {
    const lost = this.#prng.next() < this.loss;
    const jitter = this.#prng.next() * this.jitterMs;
    return lost ? undefined : this.latencyMs + jitter;
  }
}
