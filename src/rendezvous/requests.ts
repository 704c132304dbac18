/**
 * Request/response correlation for the peer's side: every message a peer sends carries an `id`
 * and the server's answer (`registered`, `challenge`, `updated`, `ack`) or `error` about it
 * echoes that id, so any number of requests can be in flight on one connection and each answer
 * reaches the request it belongs to, in whatever order the server answers. (Version 1 had one
 * waiter slot, and took any error without a `ref` for the answer to whatever waited.)
 */
import { AbortedError, NatpunchError } from '../errors.js';
import { RendezvousError } from './errors.js';
import type { AckMessage, ChallengeMessage, ErrorMessage, RegisteredMessage, UpdatedMessage } from './messages.js';

/** The server's answers that a request waits for (`punch` answers `connect` by session, not here). */
export type Answer = RegisteredMessage | ChallengeMessage | UpdatedMessage | AckMessage;
type AnswerType = Answer['type'];

interface Pending {
  expect: AnswerType | undefined;
  resolve(message: Answer): void;
  reject(error: Error): void;
}

/** Largest number of requests in flight on one connection; beyond it `issue` throws. */
export const MAX_REQUESTS_IN_FLIGHT = 256;

export class PendingRequests {
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;

  get size(): number {
    return this.#pending.size;
  }

  /** A fresh id (1, 2, ...) for a message that expects no answer of its own (accept, refuse). */
  nextId(): number {
    return ++this.#nextId;
  }

  /**
   * Reserves an id whose answer of type `expect` (or an error with this id) settles the promise;
   * `expect` undefined: only an error settles it (connect, whose success is the `punch`).
   * An abort of `signal` rejects it and frees the id.
   * @throws RendezvousError 'rate-limited' with MAX_REQUESTS_IN_FLIGHT already in flight
   */
  issue<T extends Answer>(expect: T['type'] | undefined, signal?: AbortSignal): { id: number; answer: Promise<T>; cancel(): void } {
    if (this.#pending.size >= MAX_REQUESTS_IN_FLIGHT) {
      throw new RendezvousError('rate-limited', `rendezvous: ${MAX_REQUESTS_IN_FLIGHT} requests already in flight on this connection`);
    }
    const id = this.nextId();
    let cancel!: () => void;
    const answer = new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        this.#pending.delete(id);
        reject(abortReason(signal!));
      };
      const done = (): void => {
        this.#pending.delete(id);
        signal?.removeEventListener('abort', onAbort);
      };
      cancel = done;
      this.#pending.set(id, {
        expect,
        resolve: (message) => { done(); resolve(message as T); },
        reject: (error) => { done(); reject(error); },
      });
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
    answer.catch(() => undefined);
    return { id, answer, cancel };
  }

  /**
   * Settles the request `message` answers. Returns false when no request in flight has its id
   * (or the answer is not of the type the request waits for: dropped as a mismatch).
   */
  settle(message: Answer | (ErrorMessage & { id: number })): boolean {
    const pending = this.#pending.get(message.id);
    if (!pending) return false;
    if (message.type === 'error') {
      pending.reject(new RendezvousError(message.code, `rendezvous server: ${message.message}`, { ref: message.ref }));
      return true;
    }
    if (message.type !== pending.expect) return false;
    pending.resolve(message);
    return true;
  }

  /** Rejects every request in flight (the connection closed). */
  rejectAll(error: Error): void {
    for (const pending of [...this.#pending.values()]) pending.reject(error);
  }
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return NatpunchError.is(reason) ? reason : new AbortedError('rendezvous request aborted', { cause: reason });
}
