import { DATA_PACKET_TYPE, type UdpMux } from '../punch/udp-mux.js';
import { createHash } from 'node:crypto';
import type { TransportAddress } from '../wire/index.js';

/**
 * The punched UDP 5-tuple as a datagram path for the stream transport: natpunch data packets
 * (first byte DATA_PACKET_TYPE, then a 4-byte connection id) to and from one remote endpoint on
 * the peer's shared socket. The id tells apart successive connections between the same two
 * peers, which share the 5-tuple: without it a closing connection would swallow the next one's
 * packets.
 * 1200 bytes of payload keeps every packet under the IPv6 minimum MTU with headroom for IP/UDP
 * headers and tunnels (the same figure QUIC uses for its initial packets, RFC 9000 §14).
 */
export const UDP_PATH_PAYLOAD = 1200;
/** Type byte + connection id. */
export const UDP_PATH_HEADER_LENGTH = 5;
const HEADER_LENGTH = UDP_PATH_HEADER_LENGTH;

export class UdpPath {
  readonly maxPayload = UDP_PATH_PAYLOAD - HEADER_LENGTH;
  readonly remote: TransportAddress;
  readonly #mux: UdpMux;
  readonly #connectionId: Buffer;
  #handlers: ((datagram: Uint8Array) => void)[] = [];
  #unsubscribe: () => void;

  /**
   * DatagramPath.sendBatch, present only where the mux batches (the native addon is loaded):
   * each buffer is laid out as for sendWithHeadroom. Without it the stream sends one by one.
   */
  readonly sendBatch: ((buffers: Uint8Array[]) => void) | undefined;

  /** `session`: the rendezvous session id both sides share; the connection id derives from it. */
  constructor(mux: UdpMux, remote: TransportAddress, session: string) {
    this.#mux = mux;
    this.sendBatch = mux.canBatch ? (buffers) => this.#sendBatch(buffers) : undefined;
    this.remote = remote;
    this.#connectionId = createHash('sha256').update(session).digest().subarray(0, 4);
    this.#unsubscribe = mux.onData((data, from) => {
      if (from.port !== remote.port || from.address !== remote.address) return false;
      const id = this.#connectionId;
      // Byte by byte: a subarray and equals() per datagram cost more than the comparison.
      if (data.length < HEADER_LENGTH || data[1] !== id[0] || data[2] !== id[1] || data[3] !== id[2] || data[4] !== id[3]) return false;
      const payload = data.subarray(HEADER_LENGTH);
      for (const handler of this.#handlers) handler(payload);
      return true;
    });
  }

  /** The stream leaves room for our header in front of its DATA packets (DatagramPath.headroom). */
  readonly headroom = HEADER_LENGTH;

  send(datagram: Uint8Array): void {
    const packet = Buffer.allocUnsafe(datagram.byteLength + HEADER_LENGTH);
    packet.set(datagram, HEADER_LENGTH);
    this.sendWithHeadroom(packet);
  }

  /** `buffer`: HEADER_LENGTH bytes for us, then the datagram; sent without another copy. */
  sendWithHeadroom(buffer: Uint8Array): void {
    this.#writeHeader(buffer);
    this.#mux.send(buffer, this.remote);
  }

  #sendBatch(buffers: Uint8Array[]): void {
    for (const buffer of buffers) this.#writeHeader(buffer);
    this.#mux.sendBatch(buffers, this.remote);
  }

  #writeHeader(buffer: Uint8Array): void {
    buffer[0] = DATA_PACKET_TYPE;
    buffer.set(this.#connectionId, 1);
  }

  onDatagram(handler: (datagram: Uint8Array) => void): void {
    this.#handlers.push(handler);
  }

  close(): void {
    this.#unsubscribe();
    this.#handlers = [];
  }
}
