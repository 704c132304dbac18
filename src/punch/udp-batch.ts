/**
 * Batched UDP sends on a node:dgram socket: a burst of datagrams to one remote endpoint goes to
 * the kernel in one sendmmsg(2), with runs of equal-sized datagrams as UDP GSO messages
 * (UDP_SEGMENT, Linux >= 4.18), instead of libuv's one sendmsg(2) per datagram. On the lab path
 * the kernel's cost per sendmsg was 12–15 µs per datagram (docs/decisions/003-stream-transport.md,
 * "Throughput work, 2026-12" and "Batched sends").
 *
 * node:dgram has no batch API, so the call lives in a small N-API addon built from source
 * (native/udp-batch, `npm run build:native`) and runs on the fd of the socket node:dgram already
 * owns; node:dgram keeps reading it. Without the addon (not built, not Linux, or
 * NATPUNCH_NO_NATIVE=1) there is no batch sender and callers send datagram by datagram as before.
 */
import type { Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { debuglog } from 'node:util';
import { ipToBytes, type TransportAddress } from '../wire/index.js';
import { type AddonAvailability, addonAvailability, loadAddon } from '../native/load-addon.js';

const debug = debuglog('natpunch:udp-batch');

/** The addon's function (native/udp-batch/udp_batch.c). */
export interface UdpBatchAddon {
  /**
   * Sends `buffers` in order to address:port on `fd` without blocking; returns how many (from
   * the front) the kernel took, or -errno if the call failed before sending any (-EAFNOSUPPORT:
   * `address` is not an IP address of the socket's family).
   */
  sendBatch(fd: number, ipv6Socket: boolean, address: string, port: number, buffers: readonly Uint8Array[], gso: boolean): number;
  /**
   * Sends records first..first+count-1 of `meta` (RECORD_INTS ints each: offset and length in
   * `slab`, family, port, address bytes) with one sendmmsg(2), each to its own address; returns
   * how many datagrams the kernel took, from the front, or -errno when none (udp_recv.c). With
   * `gso`, back-to-back records of one size to one address go as one UDP GSO message.
   */
  sendMany?(fd: number, ipv6Socket: boolean, slab: Uint8Array, meta: Int32Array, first: number, count: number, gso?: boolean): number;
  /** Reads for `onBatch` from a duplicate of `fd` (src/punch/udp-receive.ts); throws a clear Error when it cannot. */
  createReceiver?(fd: number, slab: Uint8Array, meta: Int32Array, slots: number, slotSize: number, headroom: number, onBatch: (count: number, truncated: number) => void): unknown;
  closeReceiver?(handle: unknown): void;
  /** The relay's fast path on a receiver (udp_recv.c; src/punch/udp-forward.ts): sets or clears rule `index`. */
  setForward?(handle: unknown, index: number, spec: Int32Array, counters: Float64Array): void;
  clearForward?(handle: unknown, index: number): void;
  /** setsockopt(UDP_GRO): 0, or -errno. */
  enableGro?(fd: number): number;
}
/** The receive side of the addon (optional above: an addon built before it lacks them). */
export type UdpReceiveAddon = Required<Pick<UdpBatchAddon, 'createReceiver' | 'closeReceiver' | 'enableGro'>>;

/**
 * Int32s per datagram record shared with udp_recv.c: offset, length, family, port, the address's
 * 16 bytes, then (received records only) 48 bytes of its text.
 */
export const RECORD_INTS = 20;

export type UdpBatchAvailability = AddonAvailability;

const ADDON = ['udp-batch', 'udp_batch', 'sendmmsg and UDP_SEGMENT'] as const;

/** Whether batched sends can run here, and if not, why. */
export function udpBatchAvailable(): UdpBatchAvailability {
  return addonAvailability(...ADDON);
}

/** The addon, or undefined where udpBatchAvailable() is not ok. */
export function udpBatchAddon(): UdpBatchAddon | undefined {
  const result = loadAddon<UdpBatchAddon>(...ADDON);
  return 'addon' in result ? result.addon : undefined;
}

/** errno values (Linux) that mean "this kernel or device cannot do UDP GSO": send without it. */
const GSO_UNSUPPORTED = new Set([5 /* EIO: no checksum offload */, 22 /* EINVAL */, 92 /* ENOPROTOOPT */, 95 /* EOPNOTSUPP */]);
/** errno values after which the fd is not ours to use (closed, or not a socket). */
const FD_GONE = new Set([9 /* EBADF */, 88 /* ENOTSOCK */]);

interface SocketState {
  handle?: { fd?: unknown } | null;
}

/** The fd of a bound, open node:dgram socket, read now (never cache it: see dgramState), else undefined. */
export function socketFd(socket: Socket): number | undefined {
  return stateFd(dgramState(socket));
}

/** The fd in a socket's state object (dgramState, which may be kept: the object lives as long as its socket), read now. */
function stateFd(state: SocketState | undefined): number | undefined {
  const fd = state?.handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * node:dgram keeps its libuv handle in a private symbol-keyed state object (lib/dgram.js,
 * `kStateSymbol`, described 'state symbol'); `socket._handle` reads the same but is deprecated
 * (DEP0112) and warns. Read per batch, never cached: after close() the handle is null, and a
 * cached fd number could meanwhile belong to another file.
 */
export function dgramState(socket: Socket): SocketState | undefined {
  const symbol = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  return symbol === undefined ? undefined : ((socket as unknown as Record<symbol, SocketState>)[symbol]);
}

export interface BatchSenderOptions {
  /** The addon; tests pass fakes. Default: the built one, if available. */
  addon?: UdpBatchAddon;
  /**
   * Use UDP GSO where the kernel takes it. Default true, unless NATPUNCH_NO_GSO=1: then each
   * datagram is its own message of the sendmmsg (for measuring, or for a device on which GSO
   * misbehaves without the kernel refusing it).
   */
  gso?: boolean;
}

/**
 * Sends bursts on `socket` through the addon; whatever it does not take (a full socket buffer,
 * an error) goes through `socket.send` one by one, exactly as without it. Order is kept: a burst
 * goes to the kernel directly only while node:dgram has nothing queued on the socket.
 */
export class UdpBatchSender {
  readonly #socket: Socket;
  readonly #addon: UdpBatchAddon;
  #state: SocketState | undefined;
  #gso: boolean;
  #ipv6Socket: boolean | undefined;
  /** Why the addon is no longer used on this socket, once it failed in a way that will not pass. */
  #disabled: string | undefined;
  /** Counts for tests and the benchmark: datagrams the addon sent, and those left to socket.send. */
  readonly stats = { batches: 0, batched: 0, fallback: 0 };

  constructor(socket: Socket, addon: UdpBatchAddon, options: { gso?: boolean } = {}) {
    this.#socket = socket;
    this.#addon = addon;
    this.#gso = options.gso ?? true;
    this.#state = dgramState(socket);
    if (this.#state === undefined) this.#disable('node:dgram has no state symbol (a Node version this module does not know)');
  }

  /** Whether UDP GSO is still tried (it is dropped after the kernel refused it once). */
  get gso(): boolean {
    return this.#gso;
  }

  /** Why batching is off on this socket, or undefined while it is on. */
  get disabled(): string | undefined {
    return this.#disabled;
  }

  /** Sends every datagram in `datagrams` to `to`, in order; throws only as `socket.send` does. */
  send(datagrams: readonly Uint8Array[], to: TransportAddress): void {
    const sent = datagrams.length > 1 ? this.#sendDirect(datagrams, to) : 0;
    if (sent > 0) {
      this.stats.batches++;
      this.stats.batched += sent;
    }
    for (let i = sent; i < datagrams.length; i++) {
      this.stats.fallback++;
      this.#socket.send(datagrams[i]!, to.port, to.address);
    }
  }

  /** How many datagrams, from the front, the addon sent (0: none, the caller sends them all). */
  #sendDirect(datagrams: readonly Uint8Array[], to: TransportAddress): number {
    if (this.#disabled !== undefined) return 0;
    const fd = this.#state?.handle?.fd;
    // Not bound yet (fd -1), closed (no handle), or sends still queued in libuv that must go first.
    if (typeof fd !== 'number' || fd < 0 || this.#socket.getSendQueueCount() > 0) return 0;
    // The fd is bound here, so address() answers; asked once (it is a getsockname(2)).
    const ipv6Socket = (this.#ipv6Socket ??= this.#socket.address().family === 'IPv6');
    let result = this.#addon.sendBatch(fd, ipv6Socket, to.address, to.port, datagrams, this.#gso);
    if (result < 0 && this.#gso && GSO_UNSUPPORTED.has(-result)) {
      debug('UDP GSO refused (errno %d): sending batches without it', -result);
      this.#gso = false;
      result = this.#addon.sendBatch(fd, ipv6Socket, to.address, to.port, datagrams, false);
    }
    if (result >= 0) return result;
    if (FD_GONE.has(-result)) this.#disable(`sendmmsg failed with errno ${-result}`);
    // EAGAIN and the like: node:dgram sends them (libuv queues until the socket is writable),
    // and the errors it ignores (no callback) it ignores here too. EAFNOSUPPORT: an address
    // the addon does not parse (a scope id, say), which node:dgram resolves as it always did.
    return 0;
  }

  #disable(reason: string): void {
    this.#disabled = reason;
    debug('batched sends off: %s', reason);
  }
}

/** A batch sender for `socket`, or undefined when the addon is unavailable (send one by one). */
export function createBatchSender(socket: Socket, options: BatchSenderOptions = {}): UdpBatchSender | undefined {
  const addon = options.addon ?? udpBatchAddon();
  if (addon === undefined) {
    debug('batched sends unavailable: %s', (udpBatchAvailable() as { reason: string }).reason);
    return undefined;
  }
  return new UdpBatchSender(socket, addon, { gso: options.gso ?? process.env['NATPUNCH_NO_GSO'] !== '1' });
}

/** Bytes of the outgoing slab and datagrams per sendmmsg(2) (udp_recv.c's MAX_SLOTS). */
const SEND_SLAB_BYTES = 256 * 1024;
const SEND_RECORDS = 256;
/** Cached destination address bytes (family + 4 words), bounded. */
const ADDRESS_CACHE = 4096;

/**
 * Datagrams to many destinations on one socket, copied into a reused slab as they are queued
 * and sent together with one sendmmsg(2) at the end of the current JavaScript task (a
 * microtask: after a whole received batch has been handled). Used where replies and relayed
 * datagrams go to many addresses: the STUN server and the TURN relay.
 *
 * Copying is what makes it safe with received slabs: node:dgram keeps a reference to the bytes
 * of a send it has to queue, so a view of a receive slab handed to `socket.send` could be
 * overwritten by the next read before it leaves. A copy of a 1200-byte datagram costs less than
 * node:dgram's send machinery per datagram, and the slab makes no garbage. Without the addon,
 * or for what the kernel does not take (a full socket buffer), each datagram goes through
 * `socket.send` as its own Buffer, in order.
 */
export class AddressedSender {
  readonly #socket: Socket;
  /** node:dgram's state object, found once (a symbol lookup per flush showed in the relay's profile). */
  readonly #state: SocketState | undefined;
  readonly #addon: Required<Pick<UdpBatchAddon, 'sendMany'>> | undefined;
  readonly #slab = Buffer.allocUnsafeSlow(SEND_SLAB_BYTES);
  /** Each queued record's address as given, for the fallback's socket.send. */
  readonly #destinations: string[] = [];
  readonly #meta = new Int32Array(SEND_RECORDS * RECORD_INTS);
  /** Address text -> [family, 4 words of bytes]; a miss parses once. */
  readonly #addresses = new Map<string, Int32Array>();
  #ipv6Socket: boolean | undefined;
  #count = 0;
  #used = 0;
  #scheduled = false;
  #disabled = false;
  /** UDP GSO for runs to one address; dropped after the kernel refused it once. */
  #gso: boolean;
  readonly #flush = (): void => this.flush();
  /** Whether UDP GSO is still tried. */
  get gso(): boolean {
    return this.#gso;
  }

  /** Datagrams sent through sendMany, and through socket.send. */
  readonly stats = { batches: 0, batched: 0, fallback: 0 };

  /**
   * `native: false`: always node:dgram (as without the addon); `addon`: tests pass fakes; `gso`
   * (default true unless NATPUNCH_NO_GSO=1): coalesce runs of equal datagrams to one address.
   */
  constructor(socket: Socket, options: { native?: boolean; addon?: UdpBatchAddon; gso?: boolean } = {}) {
    this.#socket = socket;
    this.#state = dgramState(socket);
    this.#gso = options.gso ?? process.env['NATPUNCH_NO_GSO'] !== '1';
    const addon = options.native === false ? undefined : options.addon ?? udpBatchAddon();
    this.#addon = typeof addon?.sendMany === 'function' ? (addon as Required<Pick<UdpBatchAddon, 'sendMany'>>) : undefined;
  }

  /** Queues one datagram (the concatenation of `parts`) to address:port; the bytes are copied now. */
  send(parts: Uint8Array | readonly Uint8Array[], port: number, address: string): void {
    if (parts instanceof Uint8Array) return this.sendRange(parts, 0, parts.length, port, address);
    let length = 0;
    for (let i = 0; i < parts.length; i++) length += parts[i]!.length;
    const at = this.#reserve(length, port, address);
    if (at < 0) return void this.#sendAlone(Buffer.concat(parts), port, address);
    for (let i = 0, to = at; i < parts.length; to += parts[i]!.length, i++) this.#slab.set(parts[i]!, to);
  }

  /** Queues bytes[start, end) as one datagram to address:port; copied now, no object made. */
  sendRange(bytes: Uint8Array, start: number, end: number, port: number, address: string): void {
    const at = this.#reserve(end - start, port, address);
    if (at < 0) return void this.#sendAlone(Buffer.from(bytes.subarray(start, end)), port, address);
    this.#slab.set(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end), at);
  }

  /** A record for `length` bytes to address:port; its offset in the slab, or -1: send it alone. */
  #reserve(length: number, port: number, address: string): number {
    const words = this.#addon === undefined || this.#disabled ? undefined : this.#words(address);
    // Not for the slab (no addon, an address the addon does not take, a huge datagram).
    if (words === undefined || length > SEND_SLAB_BYTES / 4) return -1;
    if (this.#count === SEND_RECORDS || this.#used + length > SEND_SLAB_BYTES) this.flush();
    const offset = this.#used;
    const m = this.#meta;
    const r = this.#count * RECORD_INTS;
    m[r] = offset;
    m[r + 1] = length;
    m[r + 2] = words[0]!;
    m[r + 3] = port;
    m[r + 4] = words[1]!;
    m[r + 5] = words[2]!;
    m[r + 6] = words[3]!;
    m[r + 7] = words[4]!;
    this.#destinations[this.#count] = address;
    this.#count++;
    this.#used += length;
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.#flush);
    }
    return offset;
  }

  /** What was queued goes first, then this datagram (already a copy) through node:dgram. */
  #sendAlone(copy: Buffer, port: number, address: string): void {
    this.flush();
    this.stats.fallback++;
    this.#socket.send(copy, port, address);
  }

  /** Sends what is queued now. */
  flush(): void {
    this.#scheduled = false;
    const count = this.#count;
    if (count === 0) return;
    let sent = 0;
    const fd = stateFd(this.#state);
    // Only while node:dgram has nothing queued: a batch must not overtake its sends.
    if (fd !== undefined && this.#socket.getSendQueueCount() === 0) {
      this.#ipv6Socket ??= this.#socket.address().family === 'IPv6';
      while (sent < count) {
        let result = this.#addon!.sendMany!(fd, this.#ipv6Socket, this.#slab, this.#meta, sent, count - sent, this.#gso);
        if (result < 0 && this.#gso && GSO_UNSUPPORTED.has(-result)) {
          debug('UDP GSO refused (errno %d): addressed batches without it', -result);
          this.#gso = false;
          result = this.#addon!.sendMany!(fd, this.#ipv6Socket, this.#slab, this.#meta, sent, count - sent, false);
        }
        if (result <= 0) {
          if (FD_GONE.has(-result)) this.#disabled = true;
          break;
        }
        sent += result;
        this.stats.batches++;
        this.stats.batched += result;
      }
    }
    // The rest as node:dgram sends (it queues them when the socket buffer is full), each a copy.
    // A closed socket throws here as socket.send always did.
    const m = this.#meta;
    this.#count = 0;
    this.#used = 0;
    for (let i = sent; i < count; i++) {
      const r = i * RECORD_INTS;
      this.stats.fallback++;
      this.#socket.send(Buffer.from(this.#slab.subarray(m[r]!, m[r]! + m[r + 1]!)), m[r + 3]!, this.#destinations[i]!);
    }
  }

  #words(address: string): Int32Array | undefined {
    let words = this.#addresses.get(address);
    if (words !== undefined) return words;
    const family = isIP(address);
    if (family === 0) return undefined; // a hostname or a scope id: node:dgram resolves those
    if (this.#addresses.size >= ADDRESS_CACHE) this.#addresses.clear();
    const bytes = new Uint8Array(16);
    bytes.set(ipToBytes(address));
    words = new Int32Array(5);
    words[0] = family;
    words.set(new Int32Array(bytes.buffer), 1);
    this.#addresses.set(address, words);
    return words;
  }
}
