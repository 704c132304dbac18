import net from 'node:net';
import { NatpunchError, TransactionTimeoutError, AbortedError } from '../errors.js';
import { errorFromResponse } from './error-response.js';
import {
  type StunMessage, type TransportAddress, Method, MessageClass, decodeMessage, encodeMessage,
  newTransactionId, formatAddress, verifyIntegrity,
} from '../wire/index.js';
import { StreamFramer } from './framing.js';
import type { RequestOptions } from './udp-client.js';
import { type Clock, realClock } from '../clock.js';
import { type TcpNet, realTcpNet } from '../tcp-net.js';

/** RFC 8489 §6.2.2: a transaction over TCP fails after Ti = 39.5 s without a response. */
export const TCP_TRANSACTION_TIMEOUT = 39_500;

/**
 * STUN client transactions over one TCP connection (no retransmissions: TCP is reliable).
 *
 * natpunch keeps this connection open while it punches TCP: its local port is the one the
 * NAT mapped, and the one simultaneous-open connects reuse (see ARCHITECTURE.md).
 */
export class StunTcpClient {
  /** The TCP connection to the server. */
  readonly socket: net.Socket;
  #framer = new StreamFramer();
  #pending = new Map<string, { resolve(m: StunMessage): void; reject(e: Error): void; key?: Uint8Array }>();
  #error: Error | undefined;
  readonly #clock: Clock;

  private constructor(socket: net.Socket, clock: Clock) {
    this.socket = socket;
    this.#clock = clock;
    socket.on('data', (chunk) => {
      let frames: Uint8Array[];
      try {
        frames = this.#framer.push(chunk);
      } catch (error) {
        this.#fail(error as Error);
        socket.destroy();
        return;
      }
      for (const frame of frames) this.#onFrame(frame);
    });
    socket.on('error', (error) => this.#fail(new NatpunchError('ERR_STUN_CLOSED', `STUN over TCP: ${error.message}`, { cause: error })));
    socket.on('close', () => this.#fail(new NatpunchError('ERR_STUN_CLOSED', 'STUN over TCP: connection closed')));
  }

  /**
   * Connect to a STUN server over TCP. `localPort` pins the local port (libuv sets SO_REUSEADDR
   * before bind). `net` and `clock` default to node:net and real timers (the sim passes its own).
   */
  static connect(to: TransportAddress, options: { localAddress?: string; localPort?: number; signal?: AbortSignal; timeoutMs?: number; net?: TcpNet; clock?: Clock } = {}): Promise<StunTcpClient> {
    const clock = options.clock ?? realClock;
    return new Promise((resolve, reject) => {
      const socket = (options.net ?? realTcpNet).connect({ host: to.address, port: to.port, localAddress: options.localAddress, localPort: options.localPort });
      const timer = clock.setTimeout(() => done(new TransactionTimeoutError(`STUN over TCP: connect to ${formatAddress(to)} timed out`)), options.timeoutMs ?? TCP_TRANSACTION_TIMEOUT);
      const onAbort = (): void => done(new AbortedError('STUN over TCP: connect aborted'));
      const done = (error?: Error): void => {
        clock.clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        socket.off('error', done);
        if (error) {
          socket.destroy();
          reject(error instanceof NatpunchError ? error : new NatpunchError('ERR_STUN_CLOSED', `STUN over TCP: connect to ${formatAddress(to)}: ${error.message}`, { cause: error }));
        } else resolve(new StunTcpClient(socket, clock));
      };
      socket.once('connect', () => done());
      socket.once('error', done);
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Run one transaction. Resolves with the success response; rejects with a NatpunchError
   * (`ERR_STUN_TIMEOUT` after `timeoutMs`, default 39 500 ms, as RFC 8489's Ti).
   */
  request(options: RequestOptions & { timeoutMs?: number } = {}): Promise<StunMessage> {
    if (this.#error) return Promise.reject(this.#error);
    const transactionId = newTransactionId();
    const id = Buffer.from(transactionId).toString('hex');
    const bytes = encodeMessage(
      { method: options.method ?? Method.Binding, messageClass: MessageClass.Request, transactionId, attributes: options.attributes ?? [] },
      { integrity: options.integrity, fingerprint: options.fingerprint },
    );
    return new Promise((resolve, reject) => {
      const finish = (): void => {
        this.#clock.clearTimeout(timer);
        this.#pending.delete(id);
        options.signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => { finish(); reject(new AbortedError('STUN request aborted')); };
      const timer = this.#clock.setTimeout(() => {
        finish();
        reject(new TransactionTimeoutError(`STUN over TCP: no response in ${options.timeoutMs ?? TCP_TRANSACTION_TIMEOUT} ms`));
      }, options.timeoutMs ?? TCP_TRANSACTION_TIMEOUT);
      this.#pending.set(id, {
        resolve: (m) => { finish(); resolve(m); },
        reject: (e) => { finish(); reject(e); },
        key: options.integrity?.key,
      });
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.socket.write(bytes);
    });
  }

  /** End the TCP connection. */
  close(): void {
    this.socket.end();
  }

  #onFrame(frame: Uint8Array): void {
    let message: StunMessage;
    try {
      message = decodeMessage(frame);
    } catch {
      return;
    }
    const pending = this.#pending.get(Buffer.from(message.transactionId).toString('hex'));
    if (!pending) return;
    if (message.messageClass === MessageClass.SuccessResponse) {
      if (pending.key && !verifyIntegrity(message, pending.key)) return;
      pending.resolve(message);
    } else if (message.messageClass === MessageClass.ErrorResponse) {
      pending.reject(errorFromResponse(message));
    }
  }

  #fail(error: Error): void {
    this.#error ??= error;
    for (const pending of [...this.#pending.values()]) pending.reject(error);
  }
}
