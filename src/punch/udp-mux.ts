import type { Socket, RemoteInfo } from 'node:dgram';
import type { TransportAddress } from '../wire/index.js';
import { createBatchSender, type BatchSenderOptions, type UdpBatchSender } from './udp-batch.js';

/**
 * Demultiplexes the peer's one UDP socket. The NAT mapping belongs to the socket, so STUN to
 * the server, connectivity checks, keepalives and stream data all share it; the first byte
 * tells them apart (RFC 7983 §7: 0–3 is STUN), and natpunch's data packets start with
 * DATA_PACKET_TYPE, outside every range RFC 7983 assigns.
 */
export const DATA_PACKET_TYPE = 0xf0;

export type DatagramHandler = (data: Buffer, from: TransportAddress) => boolean;

export class UdpMux {
  readonly socket: Socket;
  #stun: DatagramHandler[] = [];
  #data: DatagramHandler[] = [];
  #onMessage = (data: Buffer, rinfo: RemoteInfo): void => {
    if (data.length === 0) return;
    const from: TransportAddress = { family: rinfo.family === 'IPv6' ? 6 : 4, address: rinfo.address, port: rinfo.port };
    const handlers = data[0]! < 4 ? this.#stun : data[0] === DATA_PACKET_TYPE ? this.#data : undefined;
    if (!handlers) return;
    for (const handler of handlers) if (handler(data, from)) return;
  };

  /** Batched sends on the socket (src/punch/udp-batch.ts), or undefined without the addon. */
  readonly batchSender: UdpBatchSender | undefined;

  /** `batch`: options for the batch sender (tests pass a fake addon), or false for none. */
  constructor(socket: Socket, batch: BatchSenderOptions | false = {}) {
    this.socket = socket;
    socket.on('message', this.#onMessage);
    this.batchSender = batch === false ? undefined : createBatchSender(socket, batch);
  }

  /** Offer STUN-range datagrams to `handler` (in registration order) until one returns true. */
  onStun(handler: DatagramHandler): () => void {
    this.#stun.push(handler);
    return () => { this.#stun = this.#stun.filter((h) => h !== handler); };
  }

  onData(handler: DatagramHandler): () => void {
    this.#data.push(handler);
    return () => { this.#data = this.#data.filter((h) => h !== handler); };
  }

  send(data: Uint8Array, to: TransportAddress): void {
    this.socket.send(data, to.port, to.address);
  }

  /** Whether sendBatch() saves system calls; without it, it is send() per datagram. */
  get canBatch(): boolean {
    return this.batchSender !== undefined;
  }

  /** Sends every datagram to `to` in order, in one system call where the addon can. */
  sendBatch(datagrams: readonly Uint8Array[], to: TransportAddress): void {
    if (this.batchSender !== undefined) this.batchSender.send(datagrams, to);
    else for (const data of datagrams) this.socket.send(data, to.port, to.address);
  }

  close(): void {
    this.socket.off('message', this.#onMessage);
  }
}
