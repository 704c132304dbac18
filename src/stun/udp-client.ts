import type { Socket, RemoteInfo } from 'node:dgram';
import { NatpunchError, TransactionTimeoutError, AbortedError } from '../errors.js';
import { errorFromResponse } from './error-response.js';
import {
  type Attribute, type StunMessage, type TransportAddress, type EncodeOptions,
  Method, MessageClass, decodeMessage, encodeMessage, isStunMessage, newTransactionId,
  formatAddress, verifyIntegrity,
} from '../wire/index.js';
import { type RetransmissionOptions, retransmissionSchedule } from './retransmission.js';
import { type Clock, realClock } from '../clock.js';

/** What {@link StunUdpClient.request} resolves with. */
export interface StunResponse {
  /** The decoded success response. */
  message: StunMessage;
  /** Where the response came from: with CHANGE-REQUEST it is not where the request went. */
  from: TransportAddress;
  /** Milliseconds from the last transmission before the response to the response (Karn: only meaningful if not retransmitted). */
  rtt: number;
  /** How many times the request was sent. */
  transmissions: number;
}

/** Options of a STUN request (UDP and TCP clients). */
export interface RequestOptions {
  /** STUN method (default Binding, 0x001). */
  method?: number;
  /** Attributes to send (default none). */
  attributes?: Attribute[];
  /** Aborts the transaction (rejects with AbortedError). */
  signal?: AbortSignal;
  /** Sign the request and require a response signed with the same key. */
  integrity?: NonNullable<EncodeOptions['integrity']>;
  /** Append FINGERPRINT (default false). */
  fingerprint?: boolean;
  /** Retransmission schedule for this request (default: the client's; RFC 8489: RTO 500 ms, Rc 7, Rm 16). */
  retransmission?: RetransmissionOptions;
}

interface Pending {
  resolve(response: StunResponse): void;
  reject(error: Error): void;
  key: Uint8Array | undefined;
  sentAt: number;
  transmissions: number;
}

/**
 * STUN client transactions over a UDP socket the caller owns (RFC 8489 §6.2.1).
 *
 * The socket may carry other traffic too (natpunch sends STUN, connectivity checks and data
 * from one socket, because the NAT mapping belongs to that socket): the client only consumes
 * datagrams that are STUN responses to one of its own outstanding transactions.
 */
export class StunUdpClient {
  /** The UDP socket it sends on and (unless `listen: false`) reads responses from. */
  readonly socket: Socket;
  /** Sends to IPv6 servers when given (a peer's second base: its IPv6 socket); responses arrive through handle(). */
  readonly socket6: Socket | undefined;
  #pending = new Map<string, Pending>();
  #retransmission: RetransmissionOptions;
  readonly #clock: Clock;
  #closed = false;
  #onMessage = (data: Buffer, rinfo: RemoteInfo): void => {
    this.handle(data, rinfo);
  };

  /** `clock`: retransmission timers and RTTs run on it (default: the real timers). */
  constructor(socket: Socket, options: { retransmission?: RetransmissionOptions; listen?: boolean; clock?: Clock; socket6?: Socket } = {}) {
    this.socket = socket;
    this.socket6 = options.socket6;
    this.#retransmission = options.retransmission ?? {};
    this.#clock = options.clock ?? realClock;
    if (options.listen !== false) socket.on('message', this.#onMessage);
  }

  /**
   * Offer a received datagram. Returns true if it answered one of this client's transactions.
   * Call it yourself when you constructed the client with `listen: false`.
   */
  handle(data: Uint8Array, rinfo: RemoteInfo): boolean {
    if (this.#pending.size === 0 || !isStunMessage(data)) return false;
    let message: StunMessage;
    try {
      message = decodeMessage(data);
    } catch {
      return false; // RFC 8489 §6.3: malformed messages are discarded silently.
    }
    if (message.messageClass !== MessageClass.SuccessResponse && message.messageClass !== MessageClass.ErrorResponse) {
      return false;
    }
    const id = Buffer.from(message.transactionId).toString('hex');
    const pending = this.#pending.get(id);
    if (!pending) return false;
    // RFC 8489 §9.1.4: a response that fails the integrity check is discarded as if never received.
    if (pending.key && message.messageClass === MessageClass.SuccessResponse && !verifyIntegrity(message, pending.key)) {
      return true;
    }
    this.#pending.delete(id);
    const from: TransportAddress = { family: rinfo.family === 'IPv6' ? 6 : 4, address: rinfo.address, port: rinfo.port };
    if (message.messageClass === MessageClass.ErrorResponse) {
      pending.reject(errorFromResponse(message));
      return true;
    }
    pending.resolve({ message, from, rtt: this.#clock.now() - pending.sentAt, transmissions: pending.transmissions });
    return true;
  }

  /** Run one transaction to `to`. Resolves with the success response; rejects with a NatpunchError. */
  request(to: TransportAddress, options: RequestOptions = {}): Promise<StunResponse> {
    if (this.#closed) return Promise.reject(new NatpunchError('ERR_STUN_CLOSED', 'STUN client is closed'));
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(new AbortedError('STUN request aborted', { cause: signal.reason }));
    const transactionId = newTransactionId();
    const id = Buffer.from(transactionId).toString('hex');
    const bytes = encodeMessage(
      { method: options.method ?? Method.Binding, messageClass: MessageClass.Request, transactionId, attributes: options.attributes ?? [] },
      { integrity: options.integrity, fingerprint: options.fingerprint },
    );
    const schedule = retransmissionSchedule({ ...this.#retransmission, ...options.retransmission });

    return new Promise<StunResponse>((resolve, reject) => {
      const timers: unknown[] = [];
      const finish = (): void => {
        for (const t of timers) this.#clock.clearTimeout(t);
        this.#pending.delete(id);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        finish();
        reject(new AbortedError('STUN request aborted', { cause: signal?.reason }));
      };
      const pending: Pending = {
        resolve: (r) => { finish(); resolve(r); },
        reject: (e) => { finish(); reject(e); },
        key: options.integrity?.key,
        sentAt: 0,
        transmissions: 0,
      };
      this.#pending.set(id, pending);
      signal?.addEventListener('abort', onAbort, { once: true });
      const transmit = (): void => {
        pending.sentAt = this.#clock.now();
        pending.transmissions++;
        (to.family === 6 && this.socket6 ? this.socket6 : this.socket).send(bytes, to.port, to.address, (error) => {
          // A send error (e.g. EHOSTUNREACH) is not fatal: RFC 8489 keeps retransmitting until the deadline.
          if (error && this.#pending.get(id) === pending && pending.transmissions >= schedule.sends.length) {
            pending.reject(new TransactionTimeoutError(`STUN ${formatAddress(to)}: send failed: ${error.message}`));
          }
        });
      };
      for (const at of schedule.sends) timers.push(this.#clock.setTimeout(transmit, at));
      timers.push(this.#clock.setTimeout(() => {
        pending.reject(new TransactionTimeoutError(
          `STUN ${formatAddress(to)}: no response after ${schedule.sends.length} transmissions in ${schedule.deadline} ms`));
      }, schedule.deadline));
    });
  }

  /** Fail every outstanding transaction and stop listening. Does not close the socket. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.socket.off('message', this.#onMessage);
    for (const pending of [...this.#pending.values()]) {
      pending.reject(new NatpunchError('ERR_STUN_CLOSED', 'STUN client closed with the transaction outstanding'));
    }
  }
}
