/**
 * The peer's UDP keepalive toward the rendezvous server's STUN endpoint, sized to the measured
 * mapping lifetime, and the watch on the mapping it keeps.
 *
 * Why: the server-reflexive candidate a peer signs into its intents and accepts is only true while
 * its NAT keeps the socket's mapping. A NAT drops an idle UDP mapping after its timeout (RFC 4787
 * REQ-5 asks for at least 2 min, but 30 s is common and some are shorter), so the keepalive must
 * come more often than that — and no more often than needed (each one wakes radios and NATs).
 *
 * How:
 * - After registration the lifetime is measured in the background with RFC 5780 §4.6
 *   (src/nat/lifetime.ts), from separate sockets. The interval is then 0.8 × the longest idle
 *   that survived (the method brackets the lifetime within a factor of two; the 0.8 leaves room
 *   for a late or lost keepalive), at least 1 s. Before a result: the default (15 s), but as soon
 *   as a probe saw a mapping die, 0.8 × the idle below it — a known death is news enough.
 * - Each keepalive's XOR-MAPPED-ADDRESS is compared with the previous one. If it moved, the
 *   mapping died while idle since the last keepalive and the NAT made a new one: the interval is
 *   capped at once at half that idle time (it was too long by at least that much), and the
 *   registration is moved to the new address (`onMappingChanged`, the rendezvous `update`).
 *   A NAT that gives the same port back hides the death from this check; the measurement still
 *   sees it.
 * - `sizing: false` pins the interval (no measurement, no cap): today's fixed behaviour, for
 *   comparison and for callers that know their network.
 *
 * New streams take min(their default, this interval) as their PING interval (`streamKeepaliveMs`):
 * the direct path to another peer crosses the same NAT.
 * @see RFC 5780 §4.6, RFC 4787 §4.3, RFC 8445 §11 (keepalives), RFC 5626 §4.4.1 (sizing keepalives to NAT timeouts)
 */
import { EventEmitter } from 'node:events';
import { debuglog } from 'node:util';
import { type LifetimeProgress, DEFAULT_LIFETIME_MAX_SECONDS, measureMappingLifetime } from '../nat/lifetime.js';
import type { StunUdpClient } from '../stun/udp-client.js';
import { type TransportAddress, formatAddress, reflexiveAddress } from '../wire/index.js';

const debug = debuglog('natpunch:keepalive');

/** Fraction of the longest surviving idle time used as the interval. */
export const LIFETIME_FRACTION = 0.8;
/** The stream transport's own PING interval default (transport/stream-connection.ts). */
export const STREAM_KEEPALIVE_MS = 10_000;
/** No keepalive more often than this, whatever was measured. */
export const MIN_KEEPALIVE_MS = 1_000;

export interface KeepaliveState {
  /** The current interval between STUN keepalives, ms. */
  intervalMs: number;
  /** The measurement so far (null: not started, disabled, or no probe finished yet). */
  lifetime: LifetimeProgress | null;
  /** Why the interval is what it is. */
  reason: 'default' | 'pinned' | 'measured' | 'mapping-changed';
}

export interface MappingKeepaliveOptions {
  /** A STUN client on the peer's one UDP socket. */
  stun: StunUdpClient;
  /** The STUN server that proved the srflx. */
  server: TransportAddress;
  /** The srflx as registered ("ip:port"), or null. */
  mapped: string | null;
  /** Interval before any measurement, or the pinned one (default 15 s). */
  defaultIntervalMs: number;
  /** Size the interval from the lifetime and from seen mapping changes (default true). */
  sizing?: boolean;
  /** Floor of the interval, ms (default MIN_KEEPALIVE_MS). */
  minIntervalMs?: number;
  /** Longest idle time the measurement probes, s (default 120). */
  maxSeconds?: number;
  /** Local IP for the measurement's sockets. */
  localAddress?: string;
  /** Called with the new "ip:port" when a keepalive saw the mapping move (and again while the registration still names another). */
  onMappingChanged?: (mapped: string) => Promise<void>;
  /** Whether the registration names `mapped`; a false answer makes the next keepalive retry `onMappingChanged`. */
  registered?: () => string | null;
}

export interface MappingKeepalive {
  on(event: 'change', listener: (state: KeepaliveState) => void): this;
}

/** The interval a (partial) lifetime measurement supports, or null when it says nothing yet. */
export function intervalFromLifetime(lifetime: LifetimeProgress | null, minIntervalMs = MIN_KEEPALIVE_MS): number | null {
  if (!lifetime) return null;
  const { aliveSeconds, expiredSeconds, final } = lifetime;
  let basis: number | null = null;
  // A death bounds the lifetime from above: use the survival below it, or half the death.
  if (expiredSeconds !== null) basis = aliveSeconds ?? expiredSeconds / 2;
  // Nothing died: only the complete result says how long is safe.
  else if (final) basis = aliveSeconds;
  return basis === null ? null : Math.max(minIntervalMs, Math.round(LIFETIME_FRACTION * basis * 1000));
}

export class MappingKeepalive extends EventEmitter {
  readonly #options: MappingKeepaliveOptions;
  readonly #measuring = new AbortController();
  #lifetime: LifetimeProgress | null = null;
  /** Cap from seen mapping changes (half the idle time that killed one). */
  #capMs = Infinity;
  #intervalMs: number;
  #reason: KeepaliveState['reason'];
  #timer: NodeJS.Timeout | undefined;
  /** When the mapping last carried traffic to the server and back (a keepalive or the registration), performance.now(). */
  #lastRefreshAt = performance.now();
  /** When the last keepalive was sent: the next one is due an interval later. */
  #lastAttemptAt = this.#lastRefreshAt;
  #lastMapped: string | null;
  #inFlight = false;
  #closed = false;

  constructor(options: MappingKeepaliveOptions) {
    super();
    this.#options = options;
    this.#intervalMs = options.defaultIntervalMs;
    this.#reason = options.sizing === false ? 'pinned' : 'default';
    this.#lastMapped = options.mapped;
  }

  get #minMs(): number {
    return this.#options.minIntervalMs ?? MIN_KEEPALIVE_MS;
  }

  get state(): KeepaliveState {
    return { intervalMs: this.#intervalMs, lifetime: this.#lifetime, reason: this.#reason };
  }

  /** The PING interval for a new stream whose own default is `streamDefaultMs`. */
  streamKeepaliveMs(streamDefaultMs: number): number {
    return this.#options.sizing === false ? streamDefaultMs : Math.min(streamDefaultMs, this.#intervalMs);
  }

  /** Starts the keepalives and, with sizing, the background measurement. */
  start(): void {
    this.#schedule();
    if (this.#options.sizing === false) return;
    measureMappingLifetime({
      server: this.#options.server, maxSeconds: this.#options.maxSeconds ?? DEFAULT_LIFETIME_MAX_SECONDS,
      localAddress: this.#options.localAddress, signal: this.#measuring.signal,
      onProgress: (progress) => {
        this.#lifetime = progress;
        this.#resize(true);
      },
    }).then(
      (result) => debug('lifetime: alive %s s, expired %s s', result.aliveSeconds, result.expiredSeconds),
      (error: Error) => { if (!this.#closed) debug('lifetime measurement failed: %s', error.message); },
    );
  }

  close(): void {
    this.#closed = true;
    this.#measuring.abort();
    clearTimeout(this.#timer);
  }

  /** Recomputes the interval; `report` emits 'change' even if it stays (the measurement progressed). */
  #resize(report: boolean): void {
    if (this.#closed || this.#options.sizing === false) return;
    const measured = intervalFromLifetime(this.#lifetime, this.#minMs);
    const base = measured ?? this.#options.defaultIntervalMs;
    const interval = Math.max(this.#minMs, Math.min(base, this.#capMs));
    const reason = this.#capMs < base ? 'mapping-changed' : measured !== null ? 'measured' : 'default';
    const changed = interval !== this.#intervalMs || reason !== this.#reason;
    this.#intervalMs = interval;
    this.#reason = reason;
    if (changed || report) this.emit('change', this.state);
    if (changed) this.#schedule();
  }

  /** The next keepalive `intervalMs` after the last one (at once if that time has passed). */
  #schedule(): void {
    clearTimeout(this.#timer);
    if (this.#closed || this.#inFlight) return;
    const wait = Math.max(0, this.#lastAttemptAt + this.#intervalMs - performance.now());
    this.#timer = setTimeout(() => void this.#keepalive(), wait);
    this.#timer.unref();
  }

  async #keepalive(): Promise<void> {
    if (this.#closed || this.#inFlight) return;
    this.#inFlight = true;
    const sentAt = performance.now();
    this.#lastAttemptAt = sentAt;
    try {
      const response = await this.#options.stun.request(this.#options.server, { retransmission: { rto: 500, rc: 3, rm: 4 } });
      const mapped = reflexiveAddress(response.message);
      if (this.#closed || !mapped) return;
      const now = formatAddress(mapped);
      const idle = sentAt - this.#lastRefreshAt;
      this.#lastRefreshAt = sentAt;
      if (this.#lastMapped !== null && now !== this.#lastMapped) {
        debug('mapping moved %s -> %s after %d ms idle', this.#lastMapped, now, Math.round(idle));
        if (this.#options.sizing !== false) {
          this.#capMs = Math.max(this.#minMs, Math.min(this.#capMs, Math.round(idle / 2)));
          this.#resize(false);
        }
      }
      this.#lastMapped = now;
      // Tell the server, also when an earlier update failed (the registration still names another address).
      if (this.#options.onMappingChanged && (this.#options.registered?.() ?? now) !== now) {
        await this.#options.onMappingChanged(now).catch((error: Error) => debug('moving the registration to %s: %s', now, error.message));
      }
    } catch (error) {
      debug('keepalive: %s', (error as Error).message);
      // No answer: the refresh did not happen; try again after the interval.
    } finally {
      this.#inFlight = false;
      this.#schedule();
    }
  }
}
