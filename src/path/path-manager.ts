/**
 * The path manager: owns a connection's stream and every path to its peer, keeps checking them,
 * and moves the stream to the best one that works.
 *
 * - Every frame on every path is sealed (frame.ts), so whatever arrives authenticated comes from
 *   the peer, on whichever path and from whichever address.
 * - Each path is probed with PATH_CHALLENGE / PATH_RESPONSE (@see RFC 9000 §8.2). A path is
 *   *validated* once the peer has answered a challenge on it, the challenge and its answer padded
 *   to the path's full datagram size where the amplification limit allows: a path that answers
 *   small pings but drops full-size datagrams (a PMTU black hole, the failure Tailscale reports
 *   in the wild) never carries the stream. It stays *live* while the peer keeps answering:
 *   consent freshness, in the spirit of RFC 7675 §5.1 — probes every CONSENT_INTERVAL_MS when
 *   idle, every BUSY_PROBE_MS once the path has been quiet while the stream waits for answers.
 * - The active path is chosen by path-selection.ts and changed with the stream's setPath()
 *   (what was in flight is sent again on the new path, RTT and window start over). Each change
 *   is reported as 'path' with its reason:
 *     upgrade         a better path proved itself (TCP → UDP, relay → direct, a faster one)
 *     rebinding       the peer's frames now come from a new address (its NAT moved it)
 *     failover        the active path died and another took over
 *     network-change  this side's own address changed (set by the caller: see changeNetwork)
 * - A frame from an address no path knows (UdpEndpoint.onUnknownSource) is opened first; only an
 *   authentic one creates a path, which is then validated before the stream moves to it, and
 *   until then receives at most AMPLIFICATION_FACTOR times the bytes it sent (@see RFC 9000 §8,
 *   §9.3): a forged source address gets nothing worth forging for.
 * - When no path is live, 'stale' is emitted, so the owner can look for new ones (punch again
 *   through the rendezvous); the stream itself keeps retransmitting, and a path that comes back
 *   ('live') carries on where it stopped.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { debuglog } from 'node:util';
import { NoiseError, type SecureSession } from '../secure/index.js';
import { type Clock, systemClock } from '../transport/clock.js';
import { StreamConnection, type StreamOptions } from '../transport/stream-connection.js';
import type { TransportAddress } from '../wire/index.js';
import { CHALLENGE_LENGTH, FrameKind, InnerType, SEALED_AD, SEALED_OVERHEAD, encodeProbe } from './frame.js';
import { type PathKind, type RawPath } from './raw-path.js';
import { SealedPath } from './sealed-path.js';
import { PATH_CLASS, selectPath } from './path-selection.js';
import type { UdpEndpoint } from './udp-endpoint.js';

const debug = debuglog('natpunch:path');

/** Probe interval of a quiet path when nothing is waiting for an answer (RFC 7675 §5.1 suggests 5 s ± 20 %). */
export const CONSENT_INTERVAL_MS = 5_000;
/** Consent is lost after this long without an authentic frame (RFC 7675 §5.1: 30 s; shorter here, as a stalled stream is what users notice). */
export const CONSENT_TIMEOUT_MS = 15_000;
/** Probe interval of the active path once it has been quiet this long while the stream has bytes in flight. */
export const BUSY_PROBE_MS = 200;
/** A busy active path quiet for this long is failed over, if another path is live. */
export const BUSY_FAIL_MS = 700;
/** Probes of a path that has never answered, before it is given up. */
export const MAX_VALIDATION_PROBES = 8;
/** Validation probes repeat this often, ms. */
export const VALIDATION_PROBE_MS = 250;
/** Until validated, a path gets at most this many times the bytes it brought (RFC 9000 §8.1). */
export const AMPLIFICATION_FACTOR = 3;
/**
 * When the active path fails, every standby is asked at once, and the first to answer could be
 * a worse one: the relay's answer to a consent probe already on its way can beat the direct TCP
 * path's answer by a few ms (seen in the lab). Failing over to the relay and upgrading to TCP a
 * moment later restarts the stream's congestion control twice and reports a move nobody needed.
 * So a standby of a better class (path-selection.ts PATH_CLASS) that had consent when the
 * active path failed is waited for: `rtts` of its own RTT after the failure, at least `floor`
 * and at most `max` ms (its RTT is what an answer should take; the floor absorbs a busy event
 * loop on either side). The stream is stalled anyway while this runs: its path is dead.
 */
export const FAILOVER_WAIT_MS = { rtts: 3, floor: 100, max: 1_000 };
/** How often the manager looks at its paths while nothing is urgent, ms (probes go out on their own intervals). */
export const IDLE_TICK_MS = 1_000;
/** Paths a connection holds at once (beyond it, new addresses are ignored): bounds the probing. */
export const MAX_PATHS = 8;
/** New paths from unknown addresses accepted per minute. */
const MAX_NEW_SOURCES_PER_MINUTE = 16;

/**
 * Why a connection's stream moved ('path' event): `upgrade` (a better path proved itself, e.g.
 * direct UDP after starting on the relay), `rebinding` (the peer's NAT gave it a new address),
 * `failover` (the active path died; a standby took over), `network-change` (every path went
 * silent and punching again through the rendezvous found a new one).
 */
export type PathChangeReason = 'upgrade' | 'rebinding' | 'failover' | 'network-change';

/** One path a connection holds to its peer, as `connection.paths` lists them. */
export interface PathSummary {
  /** What kind of path: 'direct-udp', 'direct-tcp' or 'relay'. */
  path: PathKind;
  /** How it was found ('udp-hole-punch', 'tcp-simultaneous-open', 'relay', …). */
  technique: string;
  /** The peer's address on it, "ip:port". */
  remote: string;
  /** Whether it answered a PATH_CHALLENGE. */
  validated: boolean;
  /** Whether the peer was heard on it recently. */
  live: boolean;
  /** Whether it carries the stream now. */
  active: boolean;
  /** Smoothed probe RTT, ms, where measured. */
  rttMs: number | undefined;
}

/** A validated path that does not carry the stream ('standby' event). */
export interface StandbyInfo {
  /** What kind of path: 'direct-udp', 'direct-tcp' or 'relay'. */
  path: PathKind;
  /** How it was found ('udp-hole-punch', 'relay', …). */
  technique: string;
  /** The peer's address on it, "ip:port". */
  remote: string;
  /** Smoothed probe RTT of the path, ms, where measured. */
  rttMs?: number;
}

/** The path the stream moved to ('path' event), and why. */
export interface PathInfo extends StandbyInfo {
  /** Why it moved: see {@link PathChangeReason}. */
  reason: PathChangeReason;
}

export interface PathManagerOptions {
  session: SecureSession;
  /** The path the handshake completed on: it carries the stream from the start. */
  first: RawPath;
  /** The handshake's RTT on `first`, ms, if measured. */
  firstRttMs?: number;
  /** The connection's share of the UDP socket: frames from new addresses (rebinding) come from here. */
  udp?: UdpEndpoint;
  /** Builds the stream over the first (sealed) path; default createStream semantics. */
  createStream?: (path: SealedPath) => StreamConnection;
  stream?: StreamOptions;
  clock?: Clock;
}

interface Outstanding {
  data: Uint8Array;
  sentAt: number;
}

class PathState {
  readonly raw: RawPath;
  readonly sealed: SealedPath;
  validated = false;
  /**
   * Whether the address is known to be the peer's: true for paths our own punching found
   * (integrity-protected checks answered from it) and the handshake's; false for an address
   * first seen as the source of a frame, which gets the amplification limit until validated.
   */
  addressProven = true;
  /** Last authentic frame from the peer on this path (proves the peer -> us direction). */
  lastHeardAt = -Infinity;
  /** Last answer to one of our challenges on this path (proves the round trip): consent. */
  lastAnsweredAt = -Infinity;
  /** When this path last failed as the active one; it must answer after that to be chosen again. */
  failedAt = -Infinity;
  lastProbeAt = -Infinity;
  probesUnanswered = 0;
  outstanding: Outstanding[] = [];
  rttMs: number | undefined;
  bytesReceived = 0;
  bytesSent = 0;
  closed = false;
  readonly createdAt: number;

  constructor(raw: RawPath, sealed: SealedPath, now: number) {
    this.raw = raw;
    this.sealed = sealed;
    this.createdAt = now;
  }

  sampleRtt(sample: number): void {
    this.rttMs = this.rttMs === undefined ? sample : 0.875 * this.rttMs + 0.125 * sample;
  }
}

export class PathManager extends EventEmitter {
  readonly stream: StreamConnection;
  readonly #session: SecureSession;
  readonly #clock: Clock;
  readonly #paths: PathState[] = [];
  #active: PathState;
  #lastChangeAt: number;
  #timer: unknown;
  /** When the armed tick fires (clock time). */
  #timerAt = Infinity;
  /** A tick owed by then (FAILOVER_WAIT_MS), undefined when none. */
  #wakeAt: number | undefined;
  #closed = false;
  #stale = false;
  #newSources: number[] = [];
  /** Frames dropped: not authentic, replayed, or unknown. */
  dropped = 0;

  constructor(options: PathManagerOptions) {
    super();
    this.#session = options.session;
    this.#clock = options.clock ?? systemClock;
    const first = this.#track(options.first);
    first.validated = true;
    first.lastHeardAt = first.lastAnsweredAt = this.#clock.now();
    if (options.firstRttMs !== undefined) first.sampleRtt(options.firstRttMs);
    this.#active = first;
    this.#lastChangeAt = this.#clock.now();
    const create = options.createStream ?? ((path: SealedPath) => new StreamConnection(path, { ...options.stream, clock: this.#clock }));
    this.stream = create(first.sealed);
    options.udp?.onUnknownSource((frame, from) => this.#onUnknownSource(frame, from, options.udp!));
    this.#schedule(IDLE_TICK_MS);
  }

  /** The path the stream uses now. */
  get active(): { path: PathKind; technique: string; remote: string; rttMs: number | undefined } {
    const raw = this.#active.raw;
    return { path: raw.kind, technique: raw.technique, remote: raw.remote, rttMs: this.#active.rttMs };
  }

  /** Every path held, for diagnostics. */
  get paths(): PathSummary[] {
    const now = this.#clock.now();
    return this.#paths.map((p) => ({
      path: p.raw.kind, technique: p.raw.technique, remote: p.raw.remote, validated: p.validated,
      live: this.#live(p, now), active: p === this.#active, rttMs: p.rttMs,
    }));
  }

  /**
   * Another path to the peer (a TCP connection punched after UDP won, a new UDP pair from a
   * re-punch, a relay): it is validated, and carries the stream if the rule says it should.
   */
  add(raw: RawPath, reason?: 'network-change'): void {
    if (this.#closed) return;
    const known = this.#paths.find((p) => p.raw === raw);
    if (known) {
      // A path we hold came back (a re-punch found the same pair): ask it at once.
      this.#probe(known, !known.validated);
      return;
    }
    if (this.#paths.length >= MAX_PATHS) this.#evict();
    if (reason) this.#pendingReason = reason;
    const state = this.#track(raw);
    this.#probe(state, true);
    this.#schedule(VALIDATION_PROBE_MS);
  }

  /**
   * This side's own network changed (a new address, another interface): probe every path at
   * once, and report the next change with reason 'network-change'.
   */
  changeNetwork(): void {
    this.#pendingReason = 'network-change';
    const now = this.#clock.now();
    for (const p of this.#paths) if (!p.closed) this.#probe(p, !p.validated, now);
  }

  #pendingReason: PathChangeReason | undefined;
  /** When the active path was found dead (undefined while it is live): standbys must answer after it. */
  #activeFailedAt: number | undefined;

  #track(raw: RawPath): PathState {
    const state = new PathState(raw, new SealedPath(raw, this.#session.datagram, (bytes) => { state.bytesSent += bytes; }), this.#clock.now());
    this.#paths.push(state);
    raw.onDatagram((frame) => this.#onFrame(state, frame));
    raw.onClose((error) => this.#onRawClosed(state, error));
    return state;
  }

  // --- Receiving -----------------------------------------------------------------------------

  #open(frame: Uint8Array): Uint8Array | undefined {
    if (frame[0] !== FrameKind.Sealed) {
      // A HANDSHAKE frame may still come after the handshake (a repeat): the handshake answers it.
      if (frame[0] !== FrameKind.Handshake) this.dropped++;
      return undefined;
    }
    try {
      // In place: a received frame is ours to overwrite (a view of the UDP receive batch, a
      // node:dgram message, a TCP read) and is not read again after this; saves an allocation
      // per datagram (decision 007). What outlives this call is copied where it is kept.
      return this.#session.datagram.openInPlace(frame.subarray(1), SEALED_AD);
    } catch (error) {
      if (!(error instanceof NoiseError)) throw error;
      this.dropped++;
      return undefined;
    }
  }

  #onFrame(state: PathState, frame: Uint8Array): void {
    if (this.#closed || state.closed) return;
    const inner = this.#open(frame);
    if (inner === undefined || inner.length === 0) return;
    this.#onAuthentic(state, inner, frame.length);
  }

  #onAuthentic(state: PathState, inner: Uint8Array, frameLength: number): void {
    const now = this.#clock.now();
    state.lastHeardAt = now;
    state.bytesReceived += frameLength;
    switch (inner[0]) {
      case InnerType.PathChallenge:
        if (inner.length >= 1 + CHALLENGE_LENGTH) this.#respond(state, inner.subarray(1, 1 + CHALLENGE_LENGTH), frameLength);
        break;
      case InnerType.PathResponse:
        if (inner.length >= 1 + CHALLENGE_LENGTH) this.#onResponse(state, inner.subarray(1, 1 + CHALLENGE_LENGTH), now);
        break;
      case InnerType.Punch:
        // A copy: listeners may keep it, and `inner` is a view of a receive batch.
        this.emit('punch', inner.slice(1));
        break;
      default:
        // A stream packet. Whichever path it came on, it is the same stream (the stream itself
        // accepts packets from old paths after setPath, RFC 9000 §9.3 does the same).
        this.#deliverToStream(inner);
    }
    if (this.#stale && this.#live(state, now) && state.validated) this.#reselect(now);
  }

  #deliverToStream(inner: Uint8Array): void {
    // The stream registered its handler on the path it was created with or moved to last; any
    // of them reaches the same stream.
    if (!this.#active.sealed.deliver(inner)) this.#paths.find((p) => p.sealed.deliver(inner));
  }

  #onUnknownSource(frame: Uint8Array, from: TransportAddress, udp: UdpEndpoint): void {
    if (this.#closed) return;
    const inner = this.#open(frame);
    if (inner === undefined || inner.length === 0) return;
    const now = this.#clock.now();
    this.#newSources = this.#newSources.filter((t) => now - t < 60_000);
    if (this.#newSources.length >= MAX_NEW_SOURCES_PER_MINUTE) {
      // Still the peer's frame: the stream may use it, but no new path this minute.
      if (inner[0] === InnerType.Stream) this.#deliverToStream(inner);
      return;
    }
    this.#newSources.push(now);
    if (this.#paths.length >= MAX_PATHS) this.#evict();
    debug('authentic frame from a new address %s:%d: probing it', from.address, from.port);
    const state = this.#track(udp.pathTo(from, 'rebinding'));
    state.addressProven = false;
    this.#onAuthentic(state, inner, frame.length);
    this.#probe(state, true, now);
  }

  #respond(state: PathState, data: Uint8Array, challengeLength: number): void {
    // Padded as the challenge was, so the answer proves the same size works the other way.
    this.#sendProbe(state, InnerType.PathResponse, data, Math.min(challengeLength - SEALED_OVERHEAD, state.sealed.maxPayload));
  }

  #onResponse(state: PathState, data: Uint8Array, now: number): void {
    const index = state.outstanding.findIndex((o) => timingSafeEqual(o.data, data));
    if (index < 0) return;
    const answered = state.outstanding[index]!;
    // Older challenges still unanswered were lost (or are late): no answer to them counts now.
    state.outstanding.splice(0, index + 1);
    state.sampleRtt(now - answered.sentAt);
    state.probesUnanswered = 0;
    state.lastAnsweredAt = now;
    const fresh = !state.validated;
    if (fresh) {
      state.validated = true;
      debug('path %s %s validated (rtt %s ms)', state.raw.kind, state.raw.remote, state.rttMs?.toFixed(1));
    }
    this.#reselect(now);
    // A path that proved itself but does not carry the stream is a standby: what the connection
    // falls back to (a relay beside a direct path) or upgrades to once the rule prefers it.
    if (fresh && state !== this.#active && !this.#closed) this.emit('standby', this.#info(state));
  }

  // --- Probing -------------------------------------------------------------------------------

  /** Sends a PATH_CHALLENGE on `state`, padded to full size when `padded` and the limit allows. */
  #probe(state: PathState, padded: boolean, now = this.#clock.now()): void {
    const data = randomBytes(CHALLENGE_LENGTH);
    state.outstanding.push({ data, sentAt: now });
    if (state.outstanding.length > MAX_VALIDATION_PROBES) state.outstanding.shift();
    state.lastProbeAt = now;
    state.probesUnanswered++;
    this.#sendProbe(state, InnerType.PathChallenge, data, padded ? state.sealed.maxPayload : 1 + CHALLENGE_LENGTH);
  }

  #sendProbe(state: PathState, type: typeof InnerType.PathChallenge | typeof InnerType.PathResponse, data: Uint8Array, size: number): void {
    if (!state.validated && !state.addressProven) {
      const budget = AMPLIFICATION_FACTOR * state.bytesReceived - state.bytesSent - SEALED_OVERHEAD;
      if (budget < 1 + CHALLENGE_LENGTH) return;
      size = Math.min(size, budget);
    }
    const probe = encodeProbe(type, data);
    const inner = size > probe.length ? new Uint8Array(size) : probe;
    if (inner !== probe) inner.set(probe);
    try {
      state.sealed.send(inner);
    } catch (error) {
      debug('probe on %s failed: %s', state.raw.remote, (error as Error).message);
    }
  }

  /**
   * Whether the peer still answers on `state`: consent is our challenges answered (or, on the
   * active path, the stream's data acknowledged), not merely frames heard — frames from the peer
   * prove one direction only.
   */
  #live(state: PathState, now: number): boolean {
    if (state.closed || !state.raw.open || !state.validated || state.lastAnsweredAt <= state.failedAt) return false;
    const quiet = now - state.lastAnsweredAt;
    if (quiet >= CONSENT_TIMEOUT_MS) return false;
    // The active path, while the stream waits for answers: silence soon means trouble.
    if (state === this.#active && this.#busy && quiet >= Math.max(BUSY_FAIL_MS, 4 * this.#streamRtt)) return false;
    return true;
  }

  /** Whether the stream waits for answers (has bytes in flight or queued), as of the last tick. */
  #busy = false;
  #bytesAcked = 0;
  #bytesSent = 0;
  /** The stream's smoothed RTT, ms (0 before its first sample): a better clock for 'too quiet' than one probe. */
  #streamRtt = 0;

  /** Samples the stream: is it busy, and did the peer acknowledge new data since the last look (a round trip on the active path)? */
  #sampleStream(now: number): void {
    const stats = this.stream.stats;
    // Busy: waiting for answers, or sent something since the last look (a paced sender is often
    // between writes when we look, and a dead path must still be noticed quickly).
    this.#busy = stats.bytesInFlight > 0 || stats.sendBuffered > 0 || stats.bytesSent > this.#bytesSent;
    this.#bytesSent = stats.bytesSent;
    this.#streamRtt = stats.rtt ?? 0;
    if (stats.bytesAcked > this.#bytesAcked) {
      this.#bytesAcked = stats.bytesAcked;
      this.#active.lastAnsweredAt = Math.max(this.#active.lastAnsweredAt, now);
    }
  }

  /** Whether no path is live now ('stale' was emitted and 'live' not yet). */
  get stale(): boolean {
    return this.#stale;
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    this.#clock.clearTimeout(this.#timer);
    // A wait for a better standby (FAILOVER_WAIT_MS) ends with a tick, whatever else is due.
    if (this.#wakeAt !== undefined) ms = Math.min(ms, Math.max(0, this.#wakeAt - this.#clock.now()));
    this.#timerAt = this.#clock.now() + ms;
    this.#timer = this.#clock.setTimeout(() => this.#tick(), ms);
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /** A tick no later than `at` (clock time); the next tick is kept if it comes sooner. */
  #wakeBy(at: number): void {
    this.#wakeAt = this.#wakeAt === undefined ? at : Math.min(this.#wakeAt, at);
    if (at < this.#timerAt) this.#schedule(at - this.#clock.now());
  }

  /** The periodic work: probe who needs it, give up on the dead, choose again. */
  #tick(): void {
    if (this.#closed) return;
    const now = this.#clock.now();
    if (this.#wakeAt !== undefined && this.#wakeAt <= now) this.#wakeAt = undefined;
    this.#sampleStream(now);
    const busy = this.#busy;
    let next = IDLE_TICK_MS;
    for (const state of [...this.#paths]) {
      if (state.closed) continue;
      const quiet = now - state.lastAnsweredAt;
      const sinceProbe = now - state.lastProbeAt;
      if (!state.validated) {
        if (state.probesUnanswered >= MAX_VALIDATION_PROBES) {
          this.#drop(state, 'never answered');
          continue;
        }
        if (sinceProbe >= VALIDATION_PROBE_MS) this.#probe(state, true, now);
        next = Math.min(next, VALIDATION_PROBE_MS);
      } else if (state === this.#active && busy && quiet >= BUSY_PROBE_MS) {
        if (sinceProbe >= BUSY_PROBE_MS) this.#probe(state, false, now);
        next = Math.min(next, BUSY_PROBE_MS);
      } else if (quiet >= CONSENT_INTERVAL_MS && sinceProbe >= CONSENT_INTERVAL_MS * (0.8 + 0.4 * Math.random())) {
        this.#probe(state, false, now);
      }
      if (state !== this.#active && state.validated && quiet >= CONSENT_TIMEOUT_MS) this.#drop(state, 'consent expired');
      if ((busy || this.#stale) && state === this.#active) next = Math.min(next, BUSY_PROBE_MS);
    }
    this.#reselect(now);
    this.#schedule(next);
  }

  /** Applies the selection rule; moves the stream, reports it, or reports that nothing works. */
  #reselect(now: number): void {
    if (this.#closed) return;
    const current = this.#paths.indexOf(this.#active);
    const activeLive = this.#live(this.#active, now);
    if (activeLive) this.#activeFailedAt = undefined;
    else if (this.#activeFailedAt === undefined) {
      // The active path just failed. What failed it (an address change, a NAT reboot) may have
      // taken the standbys with it, and their consent can be seconds old: ask them now, and fail
      // over only to one that answers after this moment.
      this.#activeFailedAt = now;
      for (const p of this.#paths) if (p !== this.#active && p.validated && !p.closed) this.#probe(p, false, now);
    }
    const failedAt = this.#activeFailedAt;
    const candidates = this.#paths.map((p) => ({
      kind: p.raw.kind, rttMs: p.rttMs,
      usable: this.#live(p, now) && (failedAt === undefined || p === this.#active || p.lastAnsweredAt > failedAt),
    }));
    let chosen = selectPath(candidates, candidates[current]?.usable ? current : -1, now - this.#lastChangeAt);
    // The peer moved: its frames come from a new address, proved to be its own, and no longer
    // from the old one. Follow at once rather than wait for the old path's consent to run out
    // (QUIC migrates on the first such packet, RFC 9000 §9.3).
    const moved = this.#paths.findIndex((p, i) => candidates[i]!.usable && p.raw.technique === 'rebinding' && p.raw.kind === this.#active.raw.kind
      && p !== this.#active && this.#active.lastHeardAt < p.createdAt);
    if (moved >= 0 && chosen === current) chosen = moved;
    if (chosen >= 0 && failedAt !== undefined && chosen !== current) {
      const waitUntil = this.#betterStandbyDue(PATH_CLASS[this.#paths[chosen]!.raw.kind], failedAt);
      if (waitUntil > now) {
        debug('active path failed: waiting up to %d ms for a better standby than %s', Math.ceil(waitUntil - now), this.#paths[chosen]!.raw.kind);
        this.#wakeBy(waitUntil);
        return;
      }
    }
    if (chosen < 0) {
      if (!this.#stale) {
        this.#stale = true;
        debug('no live path (active %s %s quiet %d ms)', this.#active.raw.kind, this.#active.raw.remote, now - this.#active.lastHeardAt);
        this.emit('stale');
      }
      return;
    }
    const next = this.#paths[chosen]!;
    if (this.#stale) {
      this.#stale = false;
      this.emit('live');
      // The same path came back: the stream's timers backed off during the outage.
      if (next === this.#active) this.stream.retransmitNow();
    }
    if (next === this.#active) return;
    const previous = this.#active;
    if (!candidates[current]?.usable) {
      debug('active path %s %s not usable: closed %s open %s validated %s quiet %d ms (busy %s, stream rtt %d)', previous.raw.kind, previous.raw.remote,
        previous.closed, previous.raw.open, previous.validated, now - previous.lastAnsweredAt, this.#busy, this.#streamRtt);
    }
    const previousUsable = candidates[current]?.usable ?? false;
    // The reason, from what changed: a working path replaced by a better one is an upgrade; a
    // dead one replaced by a path of the same kind to another address of the peer's, found only
    // after the old one stopped answering, is a rebinding (the peer's NAT moved it, and its frames
    // or a re-punch showed where); replaced by a path we already held, a failover. Our own
    // network changing is something only the owner knows (changeNetwork / add's reason).
    // (A path of another kind learned from the peer's frames while the active one works, say UDP
    // beside TCP because the other side's re-punch got through first, is an upgrade too.)
    const foundSince = next.createdAt > previous.lastAnsweredAt || next.raw.technique === 'rebinding';
    const reason: PathChangeReason = this.#pendingReason
      ?? (previousUsable && (next.raw.technique !== 'rebinding' || next.raw.kind !== previous.raw.kind) ? 'upgrade'
        : foundSince && next.raw.kind === previous.raw.kind && next.raw.remote !== previous.raw.remote ? 'rebinding' : 'failover');
    this.#pendingReason = undefined;
    // A path left because it failed must answer again before it is chosen again: its consent
    // (RFC 7675) may not have run out yet, and it would otherwise win straight back and flap.
    if (!previousUsable) previous.failedAt = now;
    this.#active = next;
    this.#lastChangeAt = now;
    this.stream.setPath(next.sealed);
    debug('path %s %s -> %s %s (%s)', previous.raw.kind, previous.raw.remote, next.raw.kind, next.raw.remote, reason);
    this.emit('path', { ...this.#info(next), reason } satisfies PathInfo);
    // A rebinding replaces the address it came from: the old one is dead for good.
    if (reason === 'rebinding' && previous.raw.kind === 'direct-udp' && !this.#live(previous, now)) this.#drop(previous, 'rebound');
  }

  /**
   * FAILOVER_WAIT_MS: until when a standby better than `rank` may still answer the probe sent
   * when the active path failed at `failedAt` (-Infinity: none to wait for). Only standbys that
   * had consent then count: one long silent is no reason to wait.
   */
  #betterStandbyDue(rank: number, failedAt: number): number {
    let due = -Infinity;
    for (const p of this.#paths) {
      if (p === this.#active || p.closed || !p.raw.open || !p.validated || PATH_CLASS[p.raw.kind] >= rank) continue;
      if (p.lastAnsweredAt > failedAt || p.lastAnsweredAt <= p.failedAt || failedAt - p.lastAnsweredAt >= CONSENT_TIMEOUT_MS) continue;
      const wait = Math.min(FAILOVER_WAIT_MS.max, Math.max(FAILOVER_WAIT_MS.floor, FAILOVER_WAIT_MS.rtts * (p.rttMs ?? 0)));
      due = Math.max(due, failedAt + wait);
    }
    return due;
  }

  #info(state: PathState): StandbyInfo {
    const { kind: path, technique, remote } = state.raw;
    return { path, technique, remote, ...(state.rttMs !== undefined ? { rttMs: Math.round(state.rttMs * 10) / 10 } : {}) };
  }

  #onRawClosed(state: PathState, error?: Error): void {
    if (state.closed) return;
    debug('path %s %s closed: %s', state.raw.kind, state.raw.remote, error?.message ?? 'closed');
    state.closed = true;
    if (!this.#closed) this.#reselect(this.#clock.now());
  }

  #drop(state: PathState, why: string): void {
    if (state === this.#active) return;
    debug('dropping path %s %s: %s', state.raw.kind, state.raw.remote, why);
    state.closed = true;
    state.raw.close();
    this.#paths.splice(this.#paths.indexOf(state), 1);
  }

  /** Makes room for a new path: the worst one that is not active goes. */
  #evict(): void {
    const now = this.#clock.now();
    const victim = this.#paths.filter((p) => p !== this.#active).sort((a, b) => Number(this.#live(a, now)) - Number(this.#live(b, now)) || a.lastHeardAt - b.lastHeardAt)[0];
    if (victim) this.#drop(victim, 'too many paths');
  }

  /** Sends an application control message (PUNCH) sealed on the active path. */
  sendControl(body: Uint8Array): void {
    const inner = new Uint8Array(1 + body.length);
    inner[0] = InnerType.Punch;
    inner.set(body, 1);
    this.#active.sealed.send(inner);
  }

  /** Releases every path; the caller does it once the stream has settled. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clock.clearTimeout(this.#timer);
    for (const state of this.#paths) {
      state.closed = true;
      state.raw.close();
    }
  }
}
