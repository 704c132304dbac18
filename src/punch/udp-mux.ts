import type { Socket } from 'node:dgram';
import type { TransportAddress } from '../wire/index.js';
import { createBatchSender, type BatchSenderOptions, type UdpBatchSender } from './udp-batch.js';
import { receiveDatagrams, type DatagramReceiver, type ReceivedBatch } from './udp-receive.js';

/**
 * Demultiplexes the peer's one UDP socket. The NAT mapping belongs to the socket, so STUN to
 * the server, connectivity checks, keepalives and stream data all share it; the first byte
 * tells them apart (RFC 7983 §7: 0–3 is STUN), and natpunch's data packets start with
 * DATA_PACKET_TYPE, outside every range RFC 7983 assigns.
 */
export const DATA_PACKET_TYPE = 0xf0;

/**
 * A datagram and its source. Data handlers get a view of the received batch, valid only until
 * they return (src/punch/udp-receive.ts): whatever they keep, they copy. STUN handlers get a
 * Buffer of their own (STUN is rare here, and transactions keep what they decode). `from` is
 * the same object for every datagram from one source, and must not be changed.
 */
export type DatagramHandler = (data: Buffer, from: TransportAddress) => boolean;

/** Sources remembered (#from); a flood of new ones resets the table, never grows it. */
const MAX_SOURCES = 4096;

export class UdpMux {
  readonly socket: Socket;
  /**
   * The peer's IPv6 socket, when it has one: a second base (RFC 8445 §5.1.1.1: one per address
   * family) whose datagrams feed the same handlers. Sends go out of the socket of the
   * destination's family, so a pair never mixes families (RFC 8445 §6.1.2.2).
   */
  readonly socket6: Socket | undefined;
  #stun: DatagramHandler[] = [];
  #data: DatagramHandler[] = [];
  readonly #sources = new Map<string, Map<number, TransportAddress>>();
  #sourceCount = 0;
  readonly #onBatch = (batch: ReceivedBatch): void => {
    for (let i = 0; i < batch.count; i++) {
      if (batch.length(i) === 0) continue;
      const type = batch.slab[batch.offset(i)]!;
      const handlers = type < 4 ? this.#stun : type === DATA_PACKET_TYPE ? this.#data : undefined;
      if (!handlers) continue;
      const data = type < 4 ? batch.copy(i) : batch.view(i);
      const from = this.#from(batch.address(i), batch.port(i), batch.family(i));
      for (const handler of handlers) if (handler(data, from)) break;
    }
  };
  readonly #receivers: DatagramReceiver[];

  /** Batched sends on the socket (src/punch/udp-batch.ts), or undefined without the addon. */
  readonly batchSender: UdpBatchSender | undefined;
  /** Batched sends on socket6. */
  readonly #batchSender6: UdpBatchSender | undefined;

  /**
   * `batch`: options for the batch sender (tests pass a fake addon), or false for none; false
   * also reads through node:dgram instead of the addon's batches (decision 009), which ask the
   * kernel for UDP GRO: a peer's stream arrives in bursts of one flow. `socket6`: the peer's
   * IPv6 socket (bound with ipv6Only), if any.
   */
  constructor(socket: Socket, batch: BatchSenderOptions | false = {}, socket6?: Socket) {
    this.socket = socket;
    this.socket6 = socket6;
    const receive = (s: Socket): DatagramReceiver => receiveDatagrams(s, this.#onBatch, { native: batch !== false, gro: true });
    this.#receivers = [receive(socket), ...(socket6 ? [receive(socket6)] : [])];
    this.batchSender = batch === false ? undefined : createBatchSender(socket, batch);
    this.#batchSender6 = batch === false || !socket6 ? undefined : createBatchSender(socket6, batch);
  }

  /** Whether the addon reads the socket in batches (false: node:dgram's 'message'). */
  get batchedReceive(): boolean {
    return this.#receivers[0]!.native;
  }

  /** The same object for the same source while it keeps sending: no object per datagram. */
  #from(address: string, port: number, family: 4 | 6): TransportAddress {
    let byPort = this.#sources.get(address);
    let from = byPort?.get(port);
    if (from !== undefined) return from;
    if (this.#sourceCount >= MAX_SOURCES) {
      this.#sources.clear();
      this.#sourceCount = 0;
      byPort = undefined;
    }
    if (byPort === undefined) this.#sources.set(address, (byPort = new Map()));
    from = Object.freeze({ family, address, port });
    byPort.set(port, from);
    this.#sourceCount++;
    return from;
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

  /** Whether a datagram to an address of `family` has a socket of that family to leave from. */
  hasFamily(family: 4 | 6): boolean {
    if (family === 6 && this.socket6) return true;
    let bound: string;
    try {
      bound = this.socket.address().family;
    } catch {
      return true; // not bound yet: let the send say so
    }
    return (bound === 'IPv6' ? 6 : 4) === family;
  }

  /** The socket that sends to `to`: the IPv6 one for an IPv6 destination when there is one. */
  socketFor(to: TransportAddress): Socket {
    return to.family === 6 && this.socket6 ? this.socket6 : this.socket;
  }

  send(data: Uint8Array, to: TransportAddress): void {
    this.socketFor(to).send(data, to.port, to.address);
  }

  /** Whether sendBatch() saves system calls; without it, it is send() per datagram. */
  get canBatch(): boolean {
    return this.batchSender !== undefined;
  }

  /** Sends every datagram to `to` in order, in one system call where the addon can. */
  sendBatch(datagrams: readonly Uint8Array[], to: TransportAddress): void {
    const six = to.family === 6 && this.socket6 !== undefined;
    const sender = six ? this.#batchSender6 : this.batchSender;
    if (sender !== undefined) sender.send(datagrams, to);
    else for (const data of datagrams) this.socketFor(to).send(data, to.port, to.address);
  }

  /** Stops reading for the handlers; node:dgram reads the sockets again if they stay open. */
  close(): void {
    for (const receiver of this.#receivers) receiver.close();
  }
}
