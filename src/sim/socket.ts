/**
 * A UDP socket on a sim host, with the part of node:dgram's `Socket` that natpunch's UDP code
 * uses (UdpMux, StunUdpClient, StunServer, checkNat, measureMappingLifetime): bind, address,
 * send, close, the 'listening' / 'message' / 'close' / 'error' events, and ref/unref and buffer
 * sizes as no-ops. It behaves as node:dgram does where that code can tell: 'listening' and
 * send callbacks come asynchronously, send() on an unbound socket binds it to an ephemeral
 * port first, a closed socket throws ERR_SOCKET_DGRAM_NOT_RUNNING, and each received
 * datagram is a fresh Buffer with a RemoteInfo.
 *
 * IPv4 only, like the lab. There is no fd, so UdpMux's batch sender finds nothing to batch on
 * and sends one by one.
 */
import { EventEmitter } from 'node:events';
import type { Socket, SocketOptions, RemoteInfo, SocketType } from 'node:dgram';
import { SimError } from '../errors.js';
import type { Endpoint } from './nat.js';
import type { Datagram, Host } from './network.js';

type SendCallback = (error: Error | null, bytes: number) => void;
type Message = string | Uint8Array | readonly (string | Uint8Array)[];

function notRunning(): Error {
  return Object.assign(new Error('Not running'), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
}

export class SimUdpSocket extends EventEmitter {
  readonly host: Host;
  #local: Endpoint | undefined;
  #closed = false;

  constructor(host: Host) {
    super();
    this.host = host;
  }

  bind(...args: unknown[]): this {
    if (this.#closed) throw notRunning();
    if (this.#local !== undefined) throw Object.assign(new Error('Socket is already bound'), { code: 'ERR_SOCKET_ALREADY_BOUND' });
    const { port, address, callback } = portArguments(args, 'address');
    if (callback) this.once('listening', callback);
    try {
      this.#local = this.host.bind(this, address, port);
    } catch (error) {
      process.nextTick(() => this.emit('error', error));
      return this;
    }
    process.nextTick(() => this.emit('listening'));
    return this;
  }

  address(): { address: string; family: 'IPv4'; port: number } {
    if (this.#local === undefined) throw Object.assign(new Error('getsockname EBADF'), { code: 'EBADF', syscall: 'getsockname' });
    return { address: this.#local.address, family: 'IPv4', port: this.#local.port };
  }

  /** send(msg, port, address?, cb?) or send(msg, offset, length, port, address?, cb?). */
  send(message: Message, ...args: unknown[]): void {
    if (this.#closed) throw notRunning();
    const callback = typeof args[args.length - 1] === 'function' ? args.pop() as SendCallback : undefined;
    let data = toBuffer(message);
    if (args.length >= 3 && typeof args[2] === 'number') {
      const [offset, length] = args.splice(0, 2) as [number, number];
      data = data.subarray(offset, offset + length);
    }
    const port = args[0];
    const address = typeof args[1] === 'string' ? args[1] : '127.0.0.1';
    if (typeof port !== 'number' || !Number.isInteger(port) || port <= 0 || port > 65535) {
      throw Object.assign(new RangeError(`Port should be > 0 and < 65536. Received ${String(port)}.`), { code: 'ERR_SOCKET_BAD_PORT' });
    }
    if (this.#local === undefined) this.bind(0);
    const bytes = Buffer.from(data); // the caller may reuse its buffer as soon as send returns
    this.host.send(this.#local!, { address, port }, bytes);
    if (callback) process.nextTick(callback, null, bytes.length);
  }

  close(callback?: () => void): this {
    if (this.#closed) throw notRunning();
    this.#closed = true;
    if (callback) this.once('close', callback);
    if (this.#local !== undefined) this.host.unbind(this.#local);
    process.nextTick(() => this.emit('close'));
    return this;
  }

  /** @internal A datagram the host delivers to this socket. */
  deliver(d: Datagram): void {
    if (this.#closed) return;
    const rinfo: RemoteInfo = { address: d.src.address, family: 'IPv4', port: d.src.port, size: d.payload.length };
    this.emit('message', Buffer.from(d.payload), rinfo);
  }

  ref(): this { return this; }
  unref(): this { return this; }
  setRecvBufferSize(): void {}
  setSendBufferSize(): void {}
  getRecvBufferSize(): number { return 1 << 20; }
  getSendBufferSize(): number { return 1 << 20; }
  getSendQueueSize(): number { return 0; }
  getSendQueueCount(): number { return 0; }
}

/**
 * A node:dgram-compatible socket on `host`: pass it wherever natpunch takes a dgram.Socket or
 * a socket factory. The one cast from the subset to the full type is here; the methods outside
 * the subset do not exist on it.
 */
export function createSimSocket(host: Host, type: SocketType | SocketOptions = 'udp4'): Socket {
  const kind = typeof type === 'string' ? type : type.type;
  if (kind !== 'udp4') throw new SimError(`sim socket: ${kind} is not modelled (the sim, like the lab, is IPv4 only)`);
  return new SimUdpSocket(host) as unknown as Socket;
}

/**
 * The arguments of dgram's bind() and net's listen(): (port?, address?, callback?) or
 * ({ port, [addressKey] }, callback?); port 0 and address 0.0.0.0 by default.
 */
export function portArguments(args: unknown[], addressKey: 'address' | 'host'): { port: number; address: string; callback?: () => void } {
  const callback = typeof args[args.length - 1] === 'function' ? args.pop() as () => void : undefined;
  if (typeof args[0] === 'object' && args[0] !== null) {
    const options = args[0] as Record<string, unknown>;
    return { port: (options['port'] as number | undefined) ?? 0, address: (options[addressKey] as string | undefined) ?? '0.0.0.0', callback };
  }
  return { port: typeof args[0] === 'number' ? args[0] : 0, address: typeof args[1] === 'string' ? args[1] : '0.0.0.0', callback };
}

function toBuffer(message: Message): Buffer {
  if (typeof message === 'string') return Buffer.from(message);
  if (message instanceof Uint8Array) return Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  return Buffer.concat(message.map((m) => (typeof m === 'string' ? Buffer.from(m) : m)));
}
