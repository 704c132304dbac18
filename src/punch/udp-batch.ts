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
import { debuglog } from 'node:util';
import type { TransportAddress } from '../wire/index.js';
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
}

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

/**
 * node:dgram keeps its libuv handle in a private symbol-keyed state object (lib/dgram.js,
 * `kStateSymbol`, described 'state symbol'); `socket._handle` reads the same but is deprecated
 * (DEP0112) and warns. Read per batch, never cached: after close() the handle is null, and a
 * cached fd number could meanwhile belong to another file.
 */
function stateOf(socket: Socket): SocketState | undefined {
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
    this.#state = stateOf(socket);
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
