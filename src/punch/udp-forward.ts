/**
 * Forwarding rules on a batched receiver (native/udp-batch, udp_recv.c `setForward`): ChannelData
 * from one source on one channel is sent on by the addon as another channel to another address,
 * from the slab it was read into, before JavaScript sees the read. The TURN relay installs one
 * per pair of its own allocations that relay to each other (src/turn/fast-path.ts); everything
 * about whether a datagram may be relayed stays the server's decision, taken in JavaScript for
 * the first datagram and then held for at most a rule's time to live.
 *
 * A table has FORWARD_RULES slots. What a rule forwarded is counted by the addon in `counters`
 * (datagrams, data bytes, dropped), which `take` reads and zeroes for the server's books.
 */
import { isIP } from 'node:net';
import { ipToBytes } from '../wire/index.js';
import type { UdpBatchAddon } from './udp-batch.js';

/** Rules per receiver (udp_recv.c MAX_FORWARDS). */
export const FORWARD_RULES = 64;
const SPEC_INTS = 17;

export interface ForwardRule {
  /** The client the ChannelData comes from, and its channel number. */
  from: { address: string; port: number };
  channel: number;
  /** The socket it leaves through (its fd now, and whether it is IPv6), the client it goes to, and the channel it gets. */
  outFd: number;
  outIpv6Socket: boolean;
  to: { address: string; port: number };
  outChannel: number;
  /** Milliseconds the rule holds; after that the datagrams go to JavaScript again. */
  ttlMs: number;
}

export interface ForwardCounts {
  datagrams: number;
  bytes: number;
  dropped: number;
}

type ForwardAddon = Required<Pick<UdpBatchAddon, 'setForward' | 'clearForward'>>;

export class ForwardTable {
  readonly #addon: ForwardAddon;
  readonly #handle: unknown;
  readonly #counters = new Float64Array(FORWARD_RULES * 3);
  readonly #spec = new Int32Array(SPEC_INTS);
  readonly #used = new Uint8Array(FORWARD_RULES);
  #closed = false;

  constructor(addon: ForwardAddon, handle: unknown) {
    this.#addon = addon;
    this.#handle = handle;
  }

  /** Installs a rule; its slot, or undefined when the table is full, closed, or an address is not an IP. */
  add(rule: ForwardRule): number | undefined {
    if (this.#closed) return undefined;
    const index = this.#used.indexOf(0);
    if (index < 0 || !this.#write(index, rule)) return undefined;
    this.#used[index] = 1;
    return index;
  }

  /** Replaces slot `index`'s rule (a refreshed time to live); false when it cannot be written (the slot is then free). */
  renew(index: number, rule: ForwardRule): boolean {
    if (this.#closed || this.#used[index] !== 1) return false;
    if (this.#write(index, rule)) return true;
    this.remove(index);
    return false;
  }

  /** Clears slot `index`; what it forwarded since the last take is still there to take. */
  remove(index: number): void {
    if (this.#used[index] !== 1) return;
    this.#used[index] = 0;
    if (!this.#closed) this.#addon.clearForward(this.#handle, index);
  }

  /** What slot `index` forwarded since the last take, zeroed. */
  take(index: number): ForwardCounts {
    const c = this.#counters;
    const at = index * 3;
    const counts = { datagrams: c[at]!, bytes: c[at + 1]!, dropped: c[at + 2]! };
    c[at] = c[at + 1] = c[at + 2] = 0;
    return counts;
  }

  /** Rules in use. */
  get size(): number {
    let n = 0;
    for (const u of this.#used) n += u;
    return n;
  }

  /** The receiver closed: its rules are gone with it. */
  close(): void {
    this.#closed = true;
  }

  #write(index: number, rule: ForwardRule): boolean {
    const fromFamily = isIP(rule.from.address);
    const toFamily = isIP(rule.to.address);
    if (fromFamily === 0 || toFamily === 0 || rule.outFd < 0) return false;
    const spec = this.#spec;
    spec.fill(0);
    spec[0] = fromFamily;
    spec[1] = rule.from.port;
    putAddress(spec, 2, rule.from.address);
    spec[6] = rule.channel;
    spec[7] = rule.outFd;
    spec[8] = rule.outIpv6Socket ? 1 : 0;
    spec[9] = toFamily;
    spec[10] = rule.to.port;
    putAddress(spec, 11, rule.to.address);
    spec[15] = rule.outChannel;
    spec[16] = Math.max(1, Math.floor(rule.ttlMs));
    this.#addon.setForward(this.#handle, index, spec, this.#counters);
    return true;
  }
}

/** An address's bytes, network order, as the 4 ints at spec[at..at+3] (the addon reads them as bytes). */
function putAddress(spec: Int32Array, at: number, address: string): void {
  const bytes = new Uint8Array(16);
  bytes.set(ipToBytes(address));
  spec.set(new Int32Array(bytes.buffer), at);
}
