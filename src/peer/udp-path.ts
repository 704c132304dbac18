import { DATA_PACKET_TYPE, type UdpMux } from '../punch/udp-mux.js';
import { formatAddress, type TransportAddress } from '../wire/index.js';

/**
 * The punched UDP 5-tuple as a datagram path for the stream transport: natpunch data packets
 * (first byte DATA_PACKET_TYPE) to and from one remote endpoint on the peer's shared socket.
 * 1200 bytes of payload keeps every packet under the IPv6 minimum MTU with headroom for IP/UDP
 * headers and tunnels (the same figure QUIC uses for its initial packets, RFC 9000 §14).
 */
export const UDP_PATH_PAYLOAD = 1200;

export class UdpPath {
  readonly maxPayload = UDP_PATH_PAYLOAD - 1;
  readonly remote: TransportAddress;
  readonly #mux: UdpMux;
  readonly #key: string;
  #handlers: ((datagram: Uint8Array) => void)[] = [];
  #unsubscribe: () => void;

  constructor(mux: UdpMux, remote: TransportAddress) {
    this.#mux = mux;
    this.remote = remote;
    this.#key = formatAddress(remote);
    this.#unsubscribe = mux.onData((data, from) => {
      if (formatAddress(from) !== this.#key) return false;
      const payload = data.subarray(1);
      for (const handler of this.#handlers) handler(payload);
      return true;
    });
  }

  send(datagram: Uint8Array): void {
    const packet = Buffer.allocUnsafe(datagram.byteLength + 1);
    packet[0] = DATA_PACKET_TYPE;
    packet.set(datagram, 1);
    this.#mux.send(packet, this.remote);
  }

  onDatagram(handler: (datagram: Uint8Array) => void): void {
    this.#handlers.push(handler);
  }

  close(): void {
    this.#unsubscribe();
    this.#handlers = [];
  }
}
