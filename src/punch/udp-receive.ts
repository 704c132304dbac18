/**
 * Batched UDP receives on a node:dgram socket: the native addon (native/udp-batch, udp_recv.c)
 * takes the socket's reads over from node:dgram and reads up to 64 datagrams per recvmmsg(2)
 * into one reused slab (with UDP_GRO, Linux >= 5.0, many more per read), then makes one call
 * into JavaScript per read. node:dgram makes one recvmsg(2), one Buffer, one `rinfo` object and
 * one callback per datagram, the largest cost left on a receiver
 * (docs/decisions/003-stream-transport.md, "Batched sends"; decision 009 measures this one).
 *
 * **The bytes are only valid during the callback** (and the process.nextTick/microtask work it
 * queues, which runs before the next read): the next read overwrites the slab. A consumer that
 * keeps a datagram, or a view of it, past that must copy it. Sends through node:dgram started
 * in the callback are safe only where node:dgram sends before the next read (it resolves the
 * address in a nextTick and then sends at once when its queue is empty); when it has to queue
 * (a full socket buffer), it keeps a reference: send a copy, as `sendSlabView` below does.
 *
 * Without the addon (not built, not Linux, NATPUNCH_NO_NATIVE=1, or `native: false`) the same
 * callback is fed from `socket.on('message')`, one datagram per batch, each its own Buffer.
 * For measuring: NATPUNCH_NO_RECVMMSG=1 reads through node:dgram while sends stay batched, and
 * NATPUNCH_NO_GRO=1 keeps recvmmsg without UDP GRO.
 * Other 'message' listeners on the socket keep working with the addon too: while any exist,
 * each datagram is also emitted to them as a copied Buffer with an `rinfo`, as node:dgram did.
 */
import type { RemoteInfo, Socket } from 'node:dgram';
import { debuglog } from 'node:util';
import { type AddonAvailability, addonAvailability, loadAddon } from '../native/load-addon.js';
import { RECORD_INTS, dgramState, socketFd, udpBatchAddon, type UdpBatchAddon, type UdpReceiveAddon } from './udp-batch.js';
import { ForwardTable } from './udp-forward.js';

const debug = debuglog('natpunch:udp-receive');

/** Datagrams per recvmmsg(2) without GRO. */
const DEFAULT_SLOTS = 64;
/** Slot size without GRO: the largest datagram a path MTU of 1500 (or a 2 KiB STUN message) gives. */
const DEFAULT_SLOT_SIZE = 2048;
/** With GRO one read can carry up to 64 KiB of coalesced datagrams (udp(7)); fewer, larger slots. */
const GRO_SLOTS = 16;
const GRO_SLOT_SIZE = 65_536;
/** Records a GRO slot may split into (UDP_MAX_SEGMENTS: 64, 128 since Linux 6.9). */
const GRO_SEGMENTS = 128;
const TEXT_OFFSET = 32;
const RECORD_BYTES = RECORD_INTS * 4;

export interface ReceiveOptions {
  /** Use the addon where it is available (default true); false: node:dgram's 'message'. */
  native?: boolean;
  /** Ask for UDP GRO (default false; NATPUNCH_NO_GRO=1 overrides): worth it where a peer sends bursts of one flow (the stream). */
  gro?: boolean;
  /**
   * Writable bytes kept free before every datagram in the slab, so a consumer can put a header
   * in front (the TURN relay's ChannelData header) and send it on without copying. Default 0.
   * Batches from node:dgram have none, nor do GRO batches: check `ReceivedBatch.headroom`.
   */
  headroom?: number;
  /** Largest datagram received whole without GRO (default 2048); longer ones are dropped and counted. */
  maxDatagram?: number;
  /** The addon; tests pass fakes. */
  addon?: UdpReceiveAddon;
}

/**
 * The datagrams of one read, described by index; nothing is allocated until a caller asks for a
 * view or an address. Valid only during the callback it is passed to.
 */
export class ReceivedBatch {
  #count = 0;
  /** node:dgram's state object: its `handle` is null from the moment the socket is closed. */
  readonly #state: { handle?: unknown } | undefined;
  /** The bytes: datagram i is slab[offset(i) .. offset(i) + length(i)). */
  slab: Buffer;
  /** Writable bytes before each datagram's offset (0 when the batch came from node:dgram). */
  readonly headroom: number;
  readonly #meta: Int32Array;
  /** The records' bytes, for the addresses' text. */
  readonly #metaBytes: Buffer;
  /** IPv4 address (its 4 bytes as one int) -> text; a bounded cache, cleared when full. */
  readonly #v4 = new Map<number, string>();
  #lastV6: string | undefined;
  readonly #lastV6Words = new Int32Array(4);
  /** node:dgram's batch of one: the address as it gave it. */
  #address = '';

  constructor(slab: Buffer, meta: Int32Array, headroom: number, state: { handle?: unknown } | undefined) {
    this.#state = state;
    this.slab = slab;
    this.#meta = meta;
    this.#metaBytes = Buffer.from(meta.buffer, meta.byteOffset, meta.byteLength);
    this.headroom = headroom;
  }

  /**
   * How many datagrams this batch holds; 0 as soon as the socket is closed, so a consumer that
   * loops `i < batch.count` stops there even when it closed the socket itself mid-batch.
   */
  get count(): number {
    return this.#state?.handle === null ? 0 : this.#count;
  }

  set count(count: number) {
    this.#count = count;
  }

  offset(i: number): number {
    return this.#meta[i * RECORD_INTS]!;
  }

  length(i: number): number {
    return this.#meta[i * RECORD_INTS + 1]!;
  }

  /** 4 or 6, as the socket saw it (an IPv4 sender on an IPv6 socket is 6, a mapped address, as node:dgram says). */
  family(i: number): 4 | 6 {
    return this.#meta[i * RECORD_INTS + 2] === 6 ? 6 : 4;
  }

  port(i: number): number {
    return this.#meta[i * RECORD_INTS + 3]!;
  }

  /** The sender's address as node:dgram's `rinfo.address` writes it (inet_ntop(3)); cached, so a steady flow allocates no string. */
  address(i: number): string {
    if (this.#address !== '') return this.#address;
    const m = this.#meta;
    const at = i * RECORD_INTS;
    if (m[at + 2] !== 6) {
      const key = m[at + 4]!;
      let text = this.#v4.get(key);
      if (text === undefined) {
        if (this.#v4.size >= 4096) this.#v4.clear();
        text = this.#text(i);
        this.#v4.set(key, text);
      }
      return text;
    }
    const words = this.#lastV6Words;
    if (this.#lastV6 !== undefined && words[0] === m[at + 4] && words[1] === m[at + 5] && words[2] === m[at + 6] && words[3] === m[at + 7]) return this.#lastV6;
    words.set(m.subarray(at + 4, at + 8));
    return (this.#lastV6 = this.#text(i));
  }

  /** The address's bytes in network order (4 or 16) are at these int32s of the record: copy them into a send record. */
  addressWords(i: number): Int32Array {
    return this.#meta.subarray(i * RECORD_INTS + 4, i * RECORD_INTS + 8);
  }

  /** Datagram i as a Buffer view of the slab (a small object per call; no bytes copied). */
  view(i: number): Buffer {
    const offset = this.offset(i);
    return this.slab.subarray(offset, offset + this.length(i));
  }

  /** Datagram i as its own Buffer, for keeping. */
  copy(i: number): Buffer {
    return Buffer.from(this.view(i));
  }

  #text(i: number): string {
    const start = i * RECORD_BYTES + TEXT_OFFSET;
    const end = this.#metaBytes.indexOf(0, start);
    return this.#metaBytes.toString('latin1', start, end < 0 ? start + 48 : end);
  }

  /** @internal node:dgram's datagram as a batch of one. */
  setSingle(message: Buffer, rinfo: RemoteInfo): void {
    this.slab = message;
    this.count = 1;
    const m = this.#meta;
    m[0] = 0;
    m[1] = message.length;
    m[2] = rinfo.family === 'IPv6' ? 6 : 4;
    m[3] = rinfo.port;
    this.#address = rinfo.address;
  }
}

export type BatchHandler = (batch: ReceivedBatch) => void;

export type ReceiveAvailability = AddonAvailability;

/** Whether batched receives can run here, and if not, why. */
export function udpReceiveAvailable(): ReceiveAvailability {
  const available = addonAvailability('udp-batch', 'udp_batch', 'recvmmsg and UDP_GRO');
  if (!available.ok) return available;
  const addon = loadAddon<Partial<UdpReceiveAddon>>('udp-batch', 'udp_batch', 'recvmmsg and UDP_GRO');
  return 'addon' in addon && typeof addon.addon.createReceiver === 'function' ? available : { ok: false, reason: 'native/udp-batch predates receive batching: rebuild it (npm run build:native)' };
}

interface UdpHandle {
  fd?: unknown;
  recvStart?: () => number;
  recvStop?: () => number;
}

/** node:dgram's libuv handle (lib/dgram.js startListening calls its recvStart(); udp_wrap.cc also has recvStop()). */
function handleOf(socket: Socket): UdpHandle | undefined {
  return (dgramState(socket)?.handle as UdpHandle | null | undefined) ?? undefined;
}

/**
 * Reads `socket` for `onBatch` until `close()` (or the socket closes). Through the addon where
 * it can; `native` says which, `gro` whether the kernel took UDP_GRO.
 */
export class DatagramReceiver {
  readonly #socket: Socket;
  readonly #onBatch: BatchHandler;
  #native: { addon: UdpReceiveAddon; handle: unknown } | undefined;
  #batch: ReceivedBatch | undefined;
  #forwards: ForwardTable | undefined;
  #closed = false;
  #gro = false;
  /** Datagrams longer than a slot (or GRO segments past the records), dropped: counted here. */
  truncated = 0;
  readonly #onMessage = (message: Buffer, rinfo: RemoteInfo): void => {
    if (this.#closed) return;
    const batch = this.#batch!;
    batch.setSingle(message, rinfo);
    this.#onBatch(batch);
  };
  readonly #onClose = (): void => this.close();

  constructor(socket: Socket, onBatch: BatchHandler, options: ReceiveOptions = {}) {
    this.#socket = socket;
    this.#onBatch = onBatch;
    // node:dgram's path first; #start replaces it when the addon takes the reads over.
    this.#batch = new ReceivedBatch(Buffer.alloc(0), new Int32Array(RECORD_INTS), 0, dgramState(socket));
    socket.on('message', this.#onMessage);
    socket.once('close', this.#onClose);
    const off = options.native === false || (options.addon === undefined && process.env['NATPUNCH_NO_RECVMMSG'] === '1');
    const loaded = off ? undefined : options.addon ?? udpBatchAddon();
    const addon = typeof loaded?.createReceiver === 'function' ? (loaded as UdpReceiveAddon) : undefined;
    if (addon === undefined) {
      debug('batched receives unavailable: %s', off ? 'native: false or NATPUNCH_NO_RECVMMSG=1' : (udpReceiveAvailable() as { reason?: string }).reason);
      return;
    }
    const fd = socketFd(socket);
    if (fd !== undefined) this.#start(addon, fd, options);
    // Not bound yet: node:dgram starts reading as it emits 'listening', before any datagram is read.
    else socket.once('listening', () => { if (!this.#closed) this.#start(addon, socketFd(socket) ?? -1, options); });
  }

  /** Whether the addon reads the socket (false: node:dgram's 'message'). */
  get native(): boolean {
    return this.#native !== undefined;
  }

  /**
   * The forwarding rules of this receiver (src/punch/udp-forward.ts), or undefined when the
   * addon does not read it (or predates rules). NATPUNCH_NO_FAST_RELAY=1 turns them off.
   */
  get forwards(): ForwardTable | undefined {
    return this.#forwards;
  }

  /** Whether the kernel took UDP_GRO for this socket. */
  get gro(): boolean {
    return this.#gro;
  }

  #start(addon: UdpReceiveAddon, fd: number, options: ReceiveOptions): void {
    const handle = handleOf(this.#socket);
    if (fd < 0 || handle?.recvStop === undefined || handle.recvStart === undefined) {
      debug('batched receives off: no fd or no recvStop on node:dgram\'s handle');
      return;
    }
    if (options.gro === true && process.env['NATPUNCH_NO_GRO'] !== '1') {
      const err = addon.enableGro(fd);
      this.#gro = err === 0;
      if (err !== 0) debug('UDP_GRO refused (errno %d): reading without it', -err);
    }
    // A GRO read's later datagrams follow the one before them in the slot, with no room in
    // front: headroom is for sockets without GRO (the relay's), so a GRO batch says it has none.
    const headroom = this.#gro ? 0 : options.headroom ?? 0;
    const slots = this.#gro ? GRO_SLOTS : DEFAULT_SLOTS;
    const slotSize = (this.#gro ? GRO_SLOT_SIZE : options.maxDatagram ?? DEFAULT_SLOT_SIZE) + headroom;
    const slab = Buffer.allocUnsafeSlow(slots * slotSize);
    const meta = new Int32Array(slots * (this.#gro ? GRO_SEGMENTS : 1) * RECORD_INTS);
    const batch = new ReceivedBatch(slab, meta, headroom, dgramState(this.#socket));
    // Stop node:dgram's reading before the addon polls: both would race for the datagrams.
    handle.recvStop();
    let native;
    try {
      native = { addon, handle: addon.createReceiver(fd, slab, meta, slots, slotSize, headroom, (count: number, truncated: number) => this.#onRead(count, truncated)) };
    } catch (error) {
      handle.recvStart();
      debug('batched receives off: %s', (error as Error).message);
      return;
    }
    this.#batch = batch;
    this.#native = native;
    const forwarding = addon as UdpBatchAddon;
    if (typeof forwarding.setForward === 'function' && typeof forwarding.clearForward === 'function' && process.env['NATPUNCH_NO_FAST_RELAY'] !== '1') {
      this.#forwards = new ForwardTable(forwarding as Required<Pick<UdpBatchAddon, 'setForward' | 'clearForward'>>, native.handle);
    }
    // node:dgram no longer emits 'message'; the datagrams it would have given other listeners are re-emitted in #onRead.
    this.#socket.off('message', this.#onMessage);
  }

  #onRead(count: number, truncated: number): void {
    if (truncated > 0) {
      this.truncated += truncated;
      debug('%d datagram(s) longer than a slot dropped', truncated);
    }
    if (count < 0) {
      debug('recvmmsg failed with errno %d', -count);
      return;
    }
    if (this.#closed || count === 0) return;
    const batch = this.#batch!;
    batch.count = count;
    this.#onBatch(batch);
    // Listeners node:dgram would have fed: the same datagrams, each a Buffer of its own.
    if (this.#socket.listenerCount('message') > 0) this.#emitMessages(batch);
  }

  #emitMessages(batch: ReceivedBatch): void {
    for (let i = 0; i < batch.count; i++) {
      const family = batch.family(i) === 6 ? 'IPv6' : 'IPv4';
      const message = batch.copy(i);
      this.#socket.emit('message', message, { address: batch.address(i), family, port: batch.port(i), size: message.length } satisfies RemoteInfo);
    }
  }

  /** Stops reading for `onBatch`; node:dgram reads the socket again if it is still open. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#batch !== undefined) this.#batch.count = 0; // a consumer looping over a batch stops
    this.#socket.off('message', this.#onMessage);
    this.#socket.off('close', this.#onClose);
    this.#forwards?.close();
    const native = this.#native;
    if (native === undefined) return;
    native.addon.closeReceiver(native.handle);
    const handle = handleOf(this.#socket);
    // Still open (a mux closed before its socket): give the reading back.
    if (handle?.recvStart !== undefined && socketFd(this.#socket) !== undefined) handle.recvStart();
  }
}

/** Reads `socket` in batches (see the module comment: views are valid only during `onBatch`). */
export function receiveDatagrams(socket: Socket, onBatch: BatchHandler, options: ReceiveOptions = {}): DatagramReceiver {
  return new DatagramReceiver(socket, onBatch, options);
}
