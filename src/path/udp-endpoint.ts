/**
 * One connection's share of the peer's UDP socket: the frames that carry its connection id,
 * from whatever source address they come.
 *
 * On the wire (RFC 7983 §7 leaves 0xf0 to nobody, so the mux tells these apart from STUN):
 * `| DATA_PACKET_TYPE (0xf0) | connection id (4) | frame (frame.ts) |`
 *
 * The connection id, not the 5-tuple, says which connection a datagram belongs to (as QUIC's
 * destination connection id does, RFC 9000 §5.1): a NAT that rebinds the peer to a new port
 * changes the 5-tuple, and the connection must still see its frames in order to notice. A frame
 * from an address no path knows goes to `onUnknownSource`, where the path manager opens it
 * before believing anything about it. The id is derived from the rendezvous session id, which
 * both sides share, so successive connections between the same two peers never mix.
 */
import { createHash } from 'node:crypto';
import { DATA_PACKET_TYPE, type UdpMux } from '../punch/udp-mux.js';
import { formatAddress, type TransportAddress } from '../wire/index.js';
import type { RawPath } from './raw-path.js';

/**
 * 1200 bytes of UDP payload keeps every packet under the IPv6 minimum MTU with headroom for
 * IP/UDP headers and tunnels (the figure QUIC uses for its initial packets, RFC 9000 §14).
 */
export const UDP_PATH_PAYLOAD = 1200;
/** Type byte + connection id. */
export const UDP_PATH_HEADER_LENGTH = 5;
const HEADER_LENGTH = UDP_PATH_HEADER_LENGTH;
/**
 * Frames kept while nothing listens for them yet, and for how long. The initiator sends its
 * first handshake message right behind its nominating check, and the other side creates the
 * path (and the handshake subscribes to it) only once that check is processed, a few turns of
 * the event loop later: dropping the message would cost a 200 ms retransmission. QUIC buffers
 * packets it cannot process yet for the same reason (RFC 9000 §5.2, §12.2). A few frames, for a
 * short while, copied: nothing an attacker can grow.
 */
export const EARLY_FRAMES = 4;
export const EARLY_FRAME_MS = 2_000;

interface EarlyFrame {
  key: string;
  frame: Uint8Array;
  at: number;
}

export type FrameHandler = (frame: Uint8Array) => void;

export class UdpEndpoint {
  readonly #mux: UdpMux;
  readonly connectionId: Uint8Array;
  readonly #paths = new Map<string, UdpRawPath>();
  #unknown: ((frame: Uint8Array, from: TransportAddress) => void) | undefined;
  /** Frames from sources with no path yet, while no one handles unknown sources. */
  #early: EarlyFrame[] = [];
  readonly #unsubscribe: () => void;
  /** Called once the last path has closed, for an endpoint on a socket of its own (birthday probing). */
  readonly #onIdle: (() => void) | undefined;

  /**
   * `session`: the rendezvous session id both sides share. `onIdle`: for an endpoint on a socket
   * of its own, called when its last path closes, so the socket goes with the connection.
   */
  constructor(mux: UdpMux, session: string, options: { onIdle?: () => void } = {}) {
    this.#mux = mux;
    this.#onIdle = options.onIdle;
    this.connectionId = createHash('sha256').update(session).digest().subarray(0, 4);
    const id = this.connectionId;
    this.#unsubscribe = mux.onData((data, from) => {
      // Byte by byte: a subarray and equals() per datagram cost more than the comparison.
      if (data.length <= HEADER_LENGTH || data[1] !== id[0] || data[2] !== id[1] || data[3] !== id[2] || data[4] !== id[3]) return false;
      // A view of the mux's received batch (valid until this returns): the path manager opens it
      // in place, and what outlives the call is copied where it is kept (the stream's receive
      // buffer, the handshake's transcript).
      const frame = data.subarray(HEADER_LENGTH);
      const key = this.#key(from);
      const path = this.#paths.get(key);
      if (path) path.deliver(frame);
      else if (this.#unknown) this.#unknown(frame, from);
      else this.#keep({ key, frame: frame.slice(), at: Date.now() });
      return true;
    });
  }

  /** Before anyone handles unknown sources (the handshake is not done): keep the frame for its path. */
  #keep(early: EarlyFrame): void {
    if (this.#early.length >= EARLY_FRAMES) this.#early.shift();
    this.#early.push(early);
  }

  /** formatAddress(from), made once per source object (the mux gives the same object per source). */
  #key(from: TransportAddress): string {
    let key = this.#keys.get(from);
    if (key === undefined) this.#keys.set(from, (key = formatAddress(from)));
    return key;
  }

  readonly #keys = new WeakMap<TransportAddress, string>();

  /** Frames from addresses with no path (a rebinding, or an attacker: the caller must authenticate them). */
  onUnknownSource(handler: (frame: Uint8Array, from: TransportAddress) => void): void {
    this.#unknown = handler;
    this.#early = [];
  }

  /** The path to `remote`, created on first use. */
  pathTo(remote: TransportAddress, technique: string): UdpRawPath {
    const key = formatAddress(remote);
    let path = this.#paths.get(key);
    if (!path) {
      path = new UdpRawPath(this.#mux, remote, this.connectionId, technique, () => {
        this.#paths.delete(key);
        if (this.#paths.size === 0 && this.#onIdle) this.close();
      });
      this.#paths.set(key, path);
      const now = Date.now();
      for (const early of this.#early) if (early.key === key && now - early.at < EARLY_FRAME_MS) path.deliver(early.frame);
      this.#early = this.#early.filter((early) => early.key !== key);
    }
    return path;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    for (const path of [...this.#paths.values()]) path.close();
    this.#unknown = undefined;
    this.#early = [];
    this.#onIdle?.();
  }

  #closed = false;
}

/** Frames to and from one remote address over the shared socket. */
export class UdpRawPath implements RawPath {
  readonly kind = 'direct-udp' as const;
  readonly maxPayload = UDP_PATH_PAYLOAD - HEADER_LENGTH;
  /** The frame's sender leaves room for our header (DatagramPath.headroom). */
  readonly headroom = HEADER_LENGTH;
  readonly address: TransportAddress;
  readonly remote: string;
  readonly technique: string;
  readonly #mux: UdpMux;
  readonly #connectionId: Uint8Array;
  readonly #forget: () => void;
  #handlers: FrameHandler[] = [];
  /** Frames that came before any handler (see EARLY_FRAMES). */
  #early: EarlyFrame[] = [];
  #closeHandlers: Array<(error?: Error) => void> = [];
  #open = true;
  /**
   * DatagramPath.sendBatch, present only where the mux batches (the native addon is loaded):
   * each buffer is laid out as for sendWithHeadroom. Without it the sender goes one by one.
   */
  readonly sendBatch: ((buffers: Uint8Array[]) => void) | undefined;

  constructor(mux: UdpMux, remote: TransportAddress, connectionId: Uint8Array, technique: string, forget: () => void) {
    this.#mux = mux;
    this.address = remote;
    this.remote = formatAddress(remote);
    this.#connectionId = connectionId;
    this.technique = technique;
    this.#forget = forget;
    this.sendBatch = mux.canBatch ? (buffers) => this.#sendBatch(buffers) : undefined;
  }

  get open(): boolean {
    return this.#open;
  }

  send(frame: Uint8Array): void {
    const packet = Buffer.allocUnsafe(frame.byteLength + HEADER_LENGTH);
    packet.set(frame, HEADER_LENGTH);
    this.sendWithHeadroom(packet);
  }

  /** `buffer`: HEADER_LENGTH bytes for us, then the frame; sent without another copy. */
  sendWithHeadroom(buffer: Uint8Array): void {
    if (!this.#open) return;
    this.#writeHeader(buffer);
    this.#mux.send(buffer, this.address);
  }

  #sendBatch(buffers: Uint8Array[]): void {
    if (!this.#open) return;
    for (const buffer of buffers) this.#writeHeader(buffer);
    this.#mux.sendBatch(buffers, this.address);
  }

  #writeHeader(buffer: Uint8Array): void {
    buffer[0] = DATA_PACKET_TYPE;
    buffer.set(this.#connectionId, 1);
  }

  /** From UdpEndpoint: a frame from this path's remote (kept for a while if nobody listens yet). */
  deliver(frame: Uint8Array): void {
    if (this.#handlers.length === 0) {
      if (this.#early.length >= EARLY_FRAMES) this.#early.shift();
      this.#early.push({ key: this.remote, frame: frame.slice(), at: Date.now() });
      return;
    }
    for (const handler of this.#handlers) handler(frame);
  }

  onDatagram(handler: FrameHandler): void {
    this.#handlers.push(handler);
    if (this.#early.length === 0) return;
    const early = this.#early;
    this.#early = [];
    // After the caller has finished subscribing (it may set up more state right after this call).
    queueMicrotask(() => {
      const now = Date.now();
      for (const { frame, at } of early) if (now - at < EARLY_FRAME_MS) this.deliver(frame);
    });
  }

  onClose(handler: (error?: Error) => void): void {
    this.#closeHandlers.push(handler);
  }

  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#forget();
    this.#handlers = [];
    this.#early = [];
    this.#closeHandlers = [];
  }
}
