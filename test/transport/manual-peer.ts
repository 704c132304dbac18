/**
 * A hand-driven peer for timer tests: records what the stream sends (decoded) and lets the test
 * deliver packets it builds itself, so each rule can be checked packet by packet.
 */
import type { DatagramPath } from '../../src/transport/datagram-path.js';
import { type StreamPacket, decodePacket, encodePacket } from '../../src/transport/packet.js';
import { within } from '../support/wait.js';

export class ManualPeer {
  readonly sent: StreamPacket[] = [];
  readonly path: DatagramPath;
  #handler: ((datagram: Uint8Array) => void) | undefined;
  #waiters: Array<{ count: number; resolve: () => void }> = [];

  constructor(maxPayload = 1200) {
    this.path = {
      maxPayload,
      send: (datagram) => {
        this.sent.push(decodePacket(Uint8Array.from(datagram)));
        this.#waiters = this.#waiters.filter((waiter) => {
          if (this.sent.length < waiter.count) return true;
          waiter.resolve();
          return false;
        });
      },
      onDatagram: (handler) => {
        this.#handler = handler;
      },
    };
  }

  /** Resolves once the stream has sent `count` packets in all. */
  waitForSent(count: number): Promise<void> {
    if (this.sent.length >= count) return Promise.resolve();
    return within(new Promise((resolve) => this.#waiters.push({ count, resolve })), `the stream to send ${count} packets`, { seen: () => `${this.sent.length}` });
  }

  deliver(packet: StreamPacket): void {
    this.#handler!(encodePacket(packet));
  }

  deliverRaw(datagram: Uint8Array): void {
    this.#handler!(datagram);
  }
}

/** Lets work the stream deferred to the end of the I/O batch (its flush) run. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
