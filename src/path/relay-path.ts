/**
 * A TURN relay as a datagram path: frames go from this peer's allocation to the other peer's
 * relayed transport address (ChannelData on a bound channel), and come back as data from that
 * address. The relay sees only frames: handshake messages and AEAD-sealed packets (frame.ts),
 * never plaintext.
 *
 * Both peers allocate and each sends to the other's relayed address, so the path works whatever
 * either side's NAT does and over whatever carries each client's TURN traffic (UDP, TCP, TLS):
 * a peer on a UDP-blocked network reaches its relay over TCP and the relay-to-relay hop is UDP.
 * The path owns the TURN client: closing it frees the allocation (Refresh with lifetime 0).
 * @see RFC 8656 §12 (channels), docs/decisions/008-relay.md
 */
import { TransportError } from '../transport/errors.js';
import { formatAddress, type TransportAddress } from '../wire/index.js';
import type { TurnClient } from '../turn/client.js';
import { CHANNEL_DATA_HEADER, writeChannelDataHeader } from '../turn/channel-data.js';
import type { RawPath } from './raw-path.js';
import type { FrameHandler } from './udp-endpoint.js';
import { UDP_PATH_HEADER_LENGTH, UDP_PATH_PAYLOAD } from './udp-endpoint.js';

/**
 * Frames as large as on a direct UDP path, so the stream keeps its packet size when it moves
 * between them; ChannelData's 4 bytes fit in the same 1200-byte datagram budget (RFC 9000 §14).
 */
export const RELAY_PATH_PAYLOAD = UDP_PATH_PAYLOAD - UDP_PATH_HEADER_LENGTH;

export class RelayRawPath implements RawPath {
  readonly kind = 'relay' as const;
  readonly maxPayload = RELAY_PATH_PAYLOAD;
  /** The other peer's relayed transport address, "ip:port". */
  readonly remote: string;
  /** 'turn-udp', 'turn-tcp' or 'turn-tls': how this peer reaches its relay. */
  readonly technique: string;
  /** This peer's own relayed transport address. */
  readonly relayed: TransportAddress;
  readonly #client: TurnClient;
  readonly #peer: TransportAddress;
  #handlers: FrameHandler[] = [];
  #closeHandlers: Array<(error?: Error) => void> = [];
  #open = true;
  /**
   * Over UDP the stream leaves CHANNEL_DATA_HEADER bytes before each frame and the ChannelData
   * header is written there: no copy per datagram, and bursts leave in one sendmmsg (as on a
   * direct path). Over TCP/TLS ChannelData is padded to 4 bytes (RFC 8656 §12.5), so frames go
   * through the client's send, which pads.
   */
  readonly headroom: number | undefined;
  readonly sendWithHeadroom: ((buffer: Uint8Array) => void) | undefined;
  readonly sendBatch: ((buffers: Uint8Array[]) => void) | undefined;

  constructor(client: TurnClient, peer: TransportAddress, options: { technique: string; relayed: TransportAddress }) {
    this.#client = client;
    this.#peer = peer;
    this.remote = formatAddress(peer);
    this.technique = options.technique;
    this.relayed = options.relayed;
    const udp = client.transport.kind === 'udp';
    this.headroom = udp ? CHANNEL_DATA_HEADER : undefined;
    this.sendWithHeadroom = udp ? (buffer) => this.#sendFramed([buffer]) : undefined;
    this.sendBatch = udp ? (buffers) => this.#sendFramed(buffers) : undefined;
    client.on('data', this.#onData);
    client.once('close', (error) => this.#fail(error ?? new TransportError(`relay path to ${this.remote}: the TURN client closed`)));
    client.on('refreshError', (error, _target, final) => {
      if (final) this.#fail(new TransportError(`relay path to ${this.remote}: ${error.message}`));
    });
  }

  get open(): boolean {
    return this.#open;
  }

  readonly #onData = (from: TransportAddress, data: Uint8Array): void => {
    // Only the other peer's relayed address: the permission lets nothing else through the
    // server, but another peer's address on the same relay IP would share it.
    if (from.port !== this.#peer.port || from.address !== this.#peer.address) return;
    for (const handler of this.#handlers) handler(data);
  };

  send(frame: Uint8Array): void {
    if (!this.#open) return;
    this.#client.send(this.#peer, frame);
  }

  /** Buffers laid out as `headroom` bytes, then the frame: the header goes in front, on the bound channel. */
  #sendFramed(buffers: Uint8Array[]): void {
    if (!this.#open) return;
    const channel = this.#client.channelFor(this.#peer);
    if (channel === undefined) {
      // No channel (not bound, or gone): a Send indication per frame, as send() does.
      for (const buffer of buffers) this.#client.send(this.#peer, buffer.subarray(CHANNEL_DATA_HEADER));
      return;
    }
    for (const buffer of buffers) writeChannelDataHeader(buffer, 0, channel, buffer.length - CHANNEL_DATA_HEADER);
    this.#client.sendChannelData(buffers);
  }

  onDatagram(handler: FrameHandler): void {
    this.#handlers.push(handler);
  }

  onClose(handler: (error?: Error) => void): void {
    this.#closeHandlers.push(handler);
  }

  #fail(error: Error): void {
    if (!this.#open) return;
    this.#open = false;
    const handlers = this.#closeHandlers;
    this.#closeHandlers = [];
    this.#handlers = [];
    this.#client.off('data', this.#onData);
    for (const handler of handlers) handler(error);
    void this.#client.close().catch(() => undefined);
  }

  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#handlers = [];
    this.#closeHandlers = [];
    this.#client.off('data', this.#onData);
    void this.#client.close().catch(() => undefined);
  }
}
