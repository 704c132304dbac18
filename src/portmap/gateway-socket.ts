/**
 * A UDP socket connected to the gateway's NAT-PMP/PCP port, and request/response exchanges on
 * it with the protocol's retransmission schedule. Connected, so the kernel drops datagrams from
 * anywhere else (RFC 6886 §3.1 and RFC 6887 §8.3: a response not from the gateway's address and
 * port is silently discarded), and so its local address is the one the gateway sees, which PCP
 * must name in every request (RFC 6887 §8.1).
 * @see RFC 6886 §3.1, RFC 6887 §8.1.1, §8.3
 */

import { createSocket as createUdpSocket, type Socket } from 'node:dgram';
import { isIPv4 } from 'node:net';
import { AbortedError, NatpunchError, PortMapError } from '../errors.js';
import { type Clock, realClock } from '../clock.js';
import type { Schedule } from './retransmission.js';

export interface GatewaySocketOptions {
  /** Makes the client's socket (default: a node:dgram udp4 socket). */
  createSocket?: () => Socket;
  clock?: Clock;
}

/** What an exchange does with a datagram from the gateway: a value ends it; undefined ignores the datagram. */
export type Accept<T> = (bytes: Uint8Array) => T | undefined;

export class GatewaySocket {
  readonly gateway: string;
  readonly port: number;
  /** This host's address on the path to the gateway. */
  readonly localAddress: string;
  readonly #socket: Socket;
  readonly #clock: Clock;
  readonly #listeners = new Set<(bytes: Uint8Array) => void>();
  readonly #failures = new Set<(error: Error) => void>();
  #closed = false;

  private constructor(socket: Socket, gateway: string, port: number, clock: Clock) {
    this.#socket = socket;
    this.gateway = gateway;
    this.port = port;
    this.#clock = clock;
    this.localAddress = socket.address().address;
    socket.on('message', (data: Buffer) => {
      for (const listener of [...this.#listeners]) listener(data);
    });
    // A connected UDP socket reports the gateway's ICMP port unreachable as ECONNREFUSED: nobody
    // serves this protocol there, so every exchange in flight can stop waiting.
    socket.on('error', (error) => {
      for (const fail of [...this.#failures]) fail(error);
    });
  }

  static async open(gateway: string, port: number, options: GatewaySocketOptions = {}): Promise<GatewaySocket> {
    if (!isIPv4(gateway)) throw new PortMapError('no-gateway', `port mapping: gateway "${gateway}" is not an IPv4 address (NAT-PMP and PCP clients here speak IPv4)`);
    const socket = options.createSocket?.() ?? createUdpSocket('udp4');
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.connect(port, gateway, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      socket.close();
      throw new PortMapError('no-gateway', `port mapping: cannot reach gateway ${gateway}:${port} (${(error as Error).message}); check the route to it`, { cause: error });
    }
    return new GatewaySocket(socket, gateway, port, options.clock ?? realClock);
  }

  /**
   * Send `request` at each of `schedule.sends` until `accept` takes a datagram from the gateway.
   * Datagrams it cannot decode (it throws a NatpunchError) are discarded like any other.
   * @throws PortMapError `no-gateway` when the schedule ends unanswered or the port is unreachable
   * @throws AbortedError when `signal` aborts
   */
  exchange<T>(request: Uint8Array, schedule: Schedule, accept: Accept<T>, what: string, signal?: AbortSignal): Promise<T> {
    if (this.#closed) return Promise.reject(new PortMapError('no-gateway', `${what}: the client is closed`));
    if (signal?.aborted) return Promise.reject(new AbortedError(`${what}: aborted`, { cause: signal.reason }));
    const clock = this.#clock;
    const where = `${this.gateway}:${this.port}`;
    return new Promise<T>((resolve, reject) => {
      const timers: unknown[] = [];
      let transmissions = 0;
      const finish = (): void => {
        for (const timer of timers) clock.clearTimeout(timer);
        this.#listeners.delete(onMessage);
        this.#failures.delete(onFailure);
        signal?.removeEventListener('abort', onAbort);
      };
      const onMessage = (bytes: Uint8Array): void => {
        let value: T | undefined;
        try {
          value = accept(bytes);
        } catch (error) {
          if (NatpunchError.is(error)) return; // malformed or not ours: discarded (RFC 6887 §8.3)
          finish();
          reject(error as Error);
          return;
        }
        if (value === undefined) return;
        finish();
        resolve(value);
      };
      const onFailure = (error: Error): void => {
        finish();
        const refused = (error as NodeJS.ErrnoException).code === 'ECONNREFUSED';
        reject(new PortMapError('no-gateway', refused
          ? `${what}: gateway ${where} answered port unreachable: it runs no server for this protocol`
          : `${what}: sending to gateway ${where} failed (${error.message})`, { cause: error }));
      };
      const onAbort = (): void => {
        finish();
        reject(new AbortedError(`${what}: aborted after ${transmissions} transmissions`, { cause: signal?.reason }));
      };
      this.#listeners.add(onMessage);
      this.#failures.add(onFailure);
      signal?.addEventListener('abort', onAbort, { once: true });
      const transmit = (): void => {
        transmissions++;
        this.#socket.send(request, (error) => {
          if (error) onFailure(error);
        });
      };
      for (const at of schedule.sends) timers.push(clock.setTimeout(transmit, at));
      timers.push(clock.setTimeout(() => {
        finish();
        reject(new PortMapError('no-gateway', `${what}: no answer from gateway ${where} after ${transmissions} transmissions in ${Math.round(schedule.deadline)} ms; it may not speak this protocol, or the gateway option names the wrong host`));
      }, schedule.deadline));
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close();
  }
}
