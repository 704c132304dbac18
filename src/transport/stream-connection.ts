/**
 * A reliable, ordered, flow- and congestion-controlled byte stream over a DatagramPath.
 *
 * The stream is a Node Duplex:
 * - `write()` queues bytes; they are acknowledged by the peer before they leave memory, and
 *   `write()` returns false once `sendBufferSize` bytes are unacknowledged (backpressure);
 * - the readable side delivers bytes strictly in order; while the reader does not read, bytes
 *   wait in a receive buffer that the peer may fill only up to the window we advertise, so a slow
 *   reader stops the sender rather than growing memory (flow control, RFC 9293 §3.8.6);
 * - `end()` sends FIN (half-close); the peer sees 'end' and may keep writing. 'finish' fires
 *   once our FIN is acknowledged. 'close' fires when both directions have ended (autoDestroy);
 * - `destroy()` aborts: a RESET packet tells the peer, which sees a StreamResetError;
 *   `abort(reason)` does the same on purpose, and the peer sees a PeerAbortedError
 *   (ERR_PEER_ABORTED). Either way the RESET is sent RESET_COPIES times, RESET_SPACING ms
 *   apart (it has no retransmission of its own), and answers any packet that arrives later.
 *
 * Both ends run the same code; there is no handshake, because the path is already established
 * (and authenticated) by the layers below. The protocol pieces live in their own files:
 * packet.ts (wire format), retransmission-timer.ts (RFC 6298), sent-packets.ts (SACK/RACK loss
 * detection), new-reno.ts (RFC 5681/6582), pacer.ts, received-packets.ts (delayed ACKs),
 * receive-buffer.ts (reassembly). This file is the state machine that drives them.
 */
import { timingSafeEqual } from 'node:crypto';
import { channel } from 'node:diagnostics_channel';
import { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import { AbortedError } from '../errors.js';
import { type Clock, DeadlineTimer, systemClock } from './clock.js';
import type { DatagramPath } from './datagram-path.js';
import { PeerAbortedError, StreamDecodeError, StreamResetError, StreamTimeoutError, TransportError } from './errors.js';
import { NewReno } from './new-reno.js';
import {
  type AckBlock,
  DATA_OFFSET_LENGTH,
  HEADER_LENGTH,
  PacketType,
  RESET_TOKEN_LENGTH,
  ResetCode,
  type StreamPacket,
  ackBlockLength,
  decodePacket,
  encodePacket,
  encodePacketWithPayload,
} from './packet.js';
import { Pacer } from './pacer.js';
import { RangeSet } from './range-set.js';
import { ReceiveBuffer } from './receive-buffer.js';
import { DEFAULT_ACK_FREQUENCY, ReceivedPackets } from './received-packets.js';
import { DEFAULT_INITIAL_RTO, DEFAULT_MAX_RTO, DEFAULT_MIN_RTO, RetransmissionTimer } from './retransmission-timer.js';
import { SendBuffer } from './send-buffer.js';
import { type SentPacket, SentPackets, TIME_THRESHOLD } from './sent-packets.js';
import { halfCloseIterator } from '../half-close-iterator.js';

const debug = debuglog('natpunch-transport');
const pathChannel = channel('natpunch:transport:path');

export interface StreamOptions {
  /** Bytes the peer may send beyond what our reader has taken (receive window). Default 4 MiB, at least 16 KiB. */
  receiveWindow?: number;
  /** Unacknowledged bytes held before `write()` reports backpressure. Default 4 MiB. */
  sendBufferSize?: number;
  /** Initial congestion window in datagrams (RFC 6928). Default 10. */
  initialCongestionWindow?: number;
  /** RTO before the first RTT sample, ms (RFC 6298 §2.1). Default 1000. */
  initialRto?: number;
  /** RTO floor, ms. Default 200 (RFC 6298 §2.4 suggests 1000; see retransmission-timer.ts). */
  minRto?: number;
  /** RTO ceiling, ms (RFC 6298 §2.5). Default 60000. */
  maxRto?: number;
  /** Longest we hold an ACK, ms (RFC 5681 §4.2; RFC 9000 §18.2 default). Default 25. */
  maxAckDelay?: number;
  /** Ack-eliciting packets per ACK once 100 have arrived (the first 100: every second, RFC 5681 §4.2). Default 10. */
  ackFrequency?: number;
  /** Most ACK ranges reported in one packet. Default 32. */
  maxAckRanges?: number;
  /** Send a PING after this long without hearing from the peer, ms; 0 disables. Default 10000. */
  keepaliveInterval?: number;
  /** Abort with StreamTimeoutError after this long without hearing from the peer, ms; 0 disables. Default 30000. */
  idleTimeout?: number;
  /** Pace packets over the RTT (RFC 9002 §7.7). Default true. */
  pacing?: boolean;
  /** After 'close', keep answering the peer's retransmissions for this long, ms. Default max(idleTimeout, 3·max(RTO, initialRto)). */
  lingerTime?: number;
  /** Call `path.close()` when the stream is done with it (after lingering). Default false. */
  closePath?: boolean;
  /** Time source and timers. Default: performance.now() and the global timers. */
  clock?: Clock;
  /** Aborts the stream (destroy with AbortedError). */
  signal?: AbortSignal;
  readableHighWaterMark?: number;
  writableHighWaterMark?: number;
}

/** What `connection.stats` reports: the stream transport's RTT estimates, congestion state and counters. */
export interface StreamStats {
  /** Smoothed RTT (SRTT), ms; undefined before the first sample. */
  rtt: number | undefined;
  /** RTTVAR, ms. */
  rttVariance: number | undefined;
  /** Smallest RTT sample, ms. */
  minRtt: number | undefined;
  /** Current retransmission timeout, ms. */
  rto: number;
  /** Congestion window, bytes. */
  cwnd: number;
  /** Slow-start threshold, bytes (Infinity until the first loss). */
  ssthresh: number;
  /** Datagram bytes sent and not yet acknowledged or declared lost. */
  bytesInFlight: number;
  /** Stream bytes sent for the first time. */
  bytesSent: number;
  /** Stream bytes sent again. */
  bytesRetransmitted: number;
  /** Stream bytes delivered to the reader. */
  bytesReceived: number;
  /** Stream bytes the peer has acknowledged. */
  bytesAcked: number;
  /** Datagrams handed to the path. */
  packetsSent: number;
  /** Datagrams received and accepted. */
  packetsReceived: number;
  /** DATA packets that carried retransmitted bytes. */
  retransmits: number;
  /** Packets declared lost. */
  packetsLost: number;
  /** Tail loss probes sent (RFC 8985 §7). */
  tailLossProbes: number;
  /** Retransmission timer expiries (RFC 6298 §5.4). */
  retransmissionTimeouts: number;
  /** Streams finished without the ACK of our FIN, after the peer had closed and acknowledged every byte. */
  lastAckGiveUps: number;
  /** Window reductions (loss events and RTOs). */
  congestionEvents: number;
  /** Datagrams dropped: undecodable, or inconsistent with the stream (window, FIN, ACK of unsent). */
  datagramsDropped: number;
  /** Bytes held in the send buffer (unacknowledged plus unsent). */
  sendBuffered: number;
  /** Bytes held in the receive buffer (out of order, or waiting for the reader). */
  receiveBuffered: number;
  /** Bytes the peer's window still admits beyond what we have sent. */
  peerWindow: number;
  /** setPath() calls that changed the path. */
  pathChanges: number;
}

/** Credit each side may assume before it hears the other's window (both ends use this constant). */
export const INITIAL_MAX_STREAM_DATA = 16 * 1024;
/** Smallest datagram a path must carry: header, a one-range ACK block, offset and some data. */
export const MIN_MAX_PAYLOAD = 64;
const DEFAULT_WINDOW = 4 * 1024 * 1024;
const DEFAULT_MAX_ACK_DELAY = 25;
const DEFAULT_MAX_ACK_RANGES = 32;
const DEFAULT_KEEPALIVE_INTERVAL = 10_000;
const DEFAULT_IDLE_TIMEOUT = 30_000;
/**
 * Tail loss probes wait at least this long, ms: two ticks of Node's timer granularity, so that
 * on sub-millisecond paths scheduling noise alone does not fire them (Linux uses 10 ms for its
 * jiffy-based timers). A spurious probe costs one packet.
 */
const MIN_PROBE_TIMEOUT = 2;
/** Tail loss probes per episode before only the RTO is left. */
const MAX_PROBES = 3;
/**
 * Backed-off RTOs with only our FIN unacknowledged, after the peer's FIN, before we stop waiting
 * for its ACK: with a 200 ms RTO about 3 s, tail loss probes included. At 10% loss each way a
 * FIN/ACK round trip fails about 1 time in 5, so five attempts all fail about 3 times in 10^4.
 */
const LAST_ACK_RETRIES = 3;
/**
 * Copies of a RESET, and the time between them, ms. A RESET is not acknowledged, and the side
 * that sends it is often about to exit (Ctrl-C), so it cannot wait to answer the peer's next
 * packet: three copies spread over 40 ms get through unless the path loses all three, which
 * one queue overflow (a burst shorter than the spacing) does not do. The cost is two datagrams.
 */
export const RESET_COPIES = 3;
export const RESET_SPACING = 20;
const EMPTY = new Uint8Array(0);
/** Packets sent per turn of the event loop before incoming datagrams get their turn. */
const MAX_BURST = 64;
/** Largest chunk handed to the reader at once when several datagrams arrived together. */
const MAX_DELIVERY_CHUNK = 64 * 1024;

interface Segment {
  offset: number;
  length: number;
  fin: boolean;
  retransmission: boolean;
}

export class StreamConnection extends Duplex {
  readonly #clock: Clock;
  readonly #receiveWindow: number;
  readonly #sendBufferSize: number;
  readonly #maxAckDelay: number;
  readonly #maxAckRanges: number;
  readonly #keepaliveInterval: number;
  readonly #idleTimeout: number;
  readonly #pacing: boolean;
  readonly #lingerTime: number | undefined;
  readonly #closePath: boolean;

  #path: DatagramPath;
  readonly #attached = new WeakSet<DatagramPath>();
  #closed = false;
  /** After 'close': answer retransmissions with ACKs (graceful) or RESETs (aborted). */
  #lingering: 'ack' | 'reset' | undefined;
  #lastResetSentAt = -Infinity;
  /** The code our RESET carries (abort() sets Aborted). */
  #resetCode: ResetCode = ResetCode.Error;
  /** Resolves once every copy of our RESET has gone out. */
  #resetCopies: Promise<void> | undefined;
  #resetTokens: { send: Uint8Array; receive: Uint8Array } | undefined;

  // Sending side.
  readonly #sendBuffer = new SendBuffer();
  /** While #sendData runs on a path with sendBatch: the burst's datagrams, sent at its end. */
  #batch: Uint8Array[] | undefined;
  readonly #sent = new SentPackets();
  /** Stream positions the peer acknowledged; the FIN occupies position `#finalOffset`. */
  readonly #acked = new RangeSet();
  /** Stream positions declared lost and not yet sent again. */
  readonly #lost = new RangeSet();
  #nextOffset = 0;
  #finalOffset: number | undefined;
  #finSent = false;
  #finAcked = false;
  #peerMaxStreamData = INITIAL_MAX_STREAM_DATA;
  #pendingWrites: Array<(error?: Error | null) => void> = [];
  #finalCallback: ((error?: Error | null) => void) | undefined;
  readonly #rtt: RetransmissionTimer;
  readonly #congestion: NewReno;
  readonly #pacer: Pacer;
  #cwndLimited = false;
  #lossTime: number | undefined;
  #rtoStartedAt = 0;
  /** Tail loss probes sent since the last ACK that made progress. */
  #probeCount = 0;
  #flushScheduled = false;

  // Receiving side.
  readonly #receiveBuffer = new ReceiveBuffer();
  readonly #received: ReceivedPackets;
  #advertisedMaxStreamData: number;
  #finalSize: number | undefined;
  #endPushed = false;
  #readPaused = true;
  #deliveryPending = false;
  #lastReceivedAt: number;
  #lastKeepaliveAt = -Infinity;

  readonly #lossTimer: DeadlineTimer;
  readonly #ackTimer: DeadlineTimer;
  readonly #paceTimer: DeadlineTimer;
  readonly #idleTimer: DeadlineTimer;
  #lingerTimer: DeadlineTimer | undefined;
  #lastLingerActivityAt = 0;
  #settleTimer: DeadlineTimer | undefined;
  #settleWaiters: Array<() => void> = [];

  readonly #counters = {
    bytesSent: 0,
    bytesRetransmitted: 0,
    bytesReceived: 0,
    packetsSent: 0,
    packetsReceived: 0,
    retransmits: 0,
    packetsLost: 0,
    tailLossProbes: 0,
    retransmissionTimeouts: 0,
    lastAckGiveUps: 0,
    datagramsDropped: 0,
    pathChanges: 0,
  };

  /**
   * `for await` reads until the peer's end and leaves this side writable (Node's default
   * iterator would destroy it, an abort): see half-close-iterator.ts. Leaving early destroys.
   */
  override [Symbol.asyncIterator](): AsyncGenerator<Buffer, void, undefined> {
    return halfCloseIterator(this);
  }

  constructor(path: DatagramPath, options: StreamOptions = {}) {
    super({
      allowHalfOpen: true,
      readableHighWaterMark: options.readableHighWaterMark,
      writableHighWaterMark: options.writableHighWaterMark,
    });
    this.#clock = options.clock ?? systemClock;
    this.#receiveWindow = checkOption('receiveWindow', options.receiveWindow, DEFAULT_WINDOW, INITIAL_MAX_STREAM_DATA);
    this.#sendBufferSize = checkOption('sendBufferSize', options.sendBufferSize, DEFAULT_WINDOW, 1);
    this.#maxAckDelay = checkOption('maxAckDelay', options.maxAckDelay, DEFAULT_MAX_ACK_DELAY, 0);
    this.#maxAckRanges = checkOption('maxAckRanges', options.maxAckRanges, DEFAULT_MAX_ACK_RANGES, 1);
    this.#keepaliveInterval = checkOption('keepaliveInterval', options.keepaliveInterval, DEFAULT_KEEPALIVE_INTERVAL, 0);
    this.#idleTimeout = checkOption('idleTimeout', options.idleTimeout, DEFAULT_IDLE_TIMEOUT, 0);
    this.#lingerTime = options.lingerTime === undefined ? undefined : checkOption('lingerTime', options.lingerTime, 0, 0);
    this.#pacing = options.pacing ?? true;
    this.#closePath = options.closePath ?? false;
    checkPath(path);
    this.#path = path;

    const minRto = checkOption('minRto', options.minRto, DEFAULT_MIN_RTO, 0);
    this.#rtt = new RetransmissionTimer({
      initialRto: checkOption('initialRto', options.initialRto, DEFAULT_INITIAL_RTO, 1),
      minRto,
      maxRto: checkOption('maxRto', options.maxRto, Math.max(DEFAULT_MAX_RTO, minRto), Math.max(1, minRto)),
    });
    this.#congestion = new NewReno({
      maxDatagramSize: path.maxPayload,
      initialWindowPackets: checkOption('initialCongestionWindow', options.initialCongestionWindow, 10, 1),
    });
    this.#pacer = new Pacer(path.maxPayload);
    this.#received = new ReceivedPackets({
      ackFrequency: checkOption('ackFrequency', options.ackFrequency, DEFAULT_ACK_FREQUENCY, 1),
    });
    this.#advertisedMaxStreamData = this.#receiveWindow;

    this.#lossTimer = new DeadlineTimer(this.#clock, () => this.#onLossTimer());
    this.#ackTimer = new DeadlineTimer(this.#clock, () => this.#onAckTimer());
    this.#paceTimer = new DeadlineTimer(this.#clock, () => this.#flush());
    this.#idleTimer = new DeadlineTimer(this.#clock, () => this.#onIdleTimer());
    this.#lastReceivedAt = this.#clock.now();
    this.#armIdleTimer();

    this.#attach(path);
    const signal = options.signal;
    if (signal !== undefined) {
      const onAbort = (): void => {
        this.destroy(new AbortedError('stream: aborted by signal', { cause: signal.reason }));
      };
      if (signal.aborted) queueMicrotask(onAbort);
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        this.once('close', () => signal.removeEventListener('abort', onAbort));
      }
    }
  }

  /**
   * From now on, honour only RESETs that carry `receive` and put `send` in ours. The layer that
   * authenticates the peer derives both from its session secret (SecureSession.resetTokens), so
   * an attacker who sees the 5-tuple and connection id can no longer end the stream with a forged
   * RESET (@see RFC 9000 §10.3, stateless reset tokens). Peer connections need no tokens: every
   * datagram they carry is sealed (src/path/sealed-path.ts); this is for a stream over a
   * plaintext path.
   */
  authenticateResets(tokens: { send: Uint8Array; receive: Uint8Array }): void {
    for (const [name, token] of Object.entries(tokens)) {
      if (!(token instanceof Uint8Array) || token.length !== RESET_TOKEN_LENGTH) {
        throw new TransportError(`stream: ${name} reset token of ${(token as Uint8Array)?.length} bytes, expected ${RESET_TOKEN_LENGTH}`);
      }
    }
    this.#resetTokens = { send: Uint8Array.from(tokens.send), receive: Uint8Array.from(tokens.receive) };
  }

  #resetIsAuthentic(packet: { resetToken?: Uint8Array }): boolean {
    const expected = this.#resetTokens?.receive;
    if (expected === undefined) return true;
    return packet.resetToken !== undefined && timingSafeEqual(packet.resetToken, expected);
  }

  /** @internal The path packets go out on now. */
  get datagramPath(): DatagramPath {
    return this.#path;
  }

  /** Transport statistics now: RTT, congestion window, bytes sent, retransmitted, lost. */
  get stats(): StreamStats {
    const minRtt = this.#rtt.minRtt;
    return {
      rtt: this.#rtt.srtt,
      rttVariance: this.#rtt.rttvar,
      minRtt: Number.isFinite(minRtt) ? minRtt : undefined,
      rto: this.#rtt.rto,
      cwnd: this.#congestion.cwnd,
      ssthresh: this.#congestion.ssthresh,
      bytesInFlight: this.#sent.bytesInFlight,
      bytesAcked: Math.min(this.#sendUna(), this.#finalOffset ?? Infinity),
      congestionEvents: this.#congestion.congestionEvents,
      sendBuffered: this.#sendBuffer.length,
      receiveBuffered: this.#receiveBuffer.bufferedBytes,
      peerWindow: Math.max(0, this.#peerMaxStreamData - this.#nextOffset),
      ...this.#counters,
    };
  }

  /**
   * @internal
   * Moves the stream to another path without losing bytes (relay -> direct, NAT rebinding).
   * What was in flight on the old path is sent again on the new one, and the RTT estimate and
   * congestion window start over, since the new path's capacity is unknown (RFC 9000 §9.4).
   * Datagrams still arriving on the old path are accepted: they are the same authenticated stream.
   */
  setPath(path: DatagramPath): void {
    if (this.#closed || path === this.#path) return;
    checkPath(path);
    this.#path = path;
    this.#attach(path);
    this.#counters.pathChanges++;
    this.#restart(path.maxPayload);
    debug('path changed, maxPayload %d', path.maxPayload);
    if (pathChannel.hasSubscribers) pathChannel.publish({ stream: this, path });
    // Not 'path': a connection built on this stream (src/peer) reports its path by that name.
    this.emit('datagram-path', path);
    this.#scheduleFlush();
  }

  /**
   * The path works again after an outage (the peer answers once more): send what is in flight
   * now instead of waiting out a retransmission timer backed off during the outage, with the
   * RTT and window started over, as after setPath() — the outage may have been a new NAT
   * mapping on the same addresses, with other queues behind it.
   */
  retransmitNow(): void {
    if (this.#closed) return;
    this.#restart(this.#path.maxPayload);
    debug('path back: retransmitting what was in flight');
    this.#scheduleFlush();
  }

  #restart(maxPayload: number): void {
    this.#rtt.reset();
    this.#congestion.reset(maxPayload, this.#sent.nextPacketNumber - 1);
    this.#pacer.setMaxDatagramSize(maxPayload);
    for (const packet of this.#sent.declareAllLost()) this.#onPacketLost(packet);
    this.#lossTime = undefined;
    this.#probeCount = 0;
    this.#rtoStartedAt = this.#clock.now();
    this.#received.requestImmediate();
  }

  /**
   * Sends a PING now (no data, ack-eliciting, retransmitted if lost): key confirmation for a
   * handshake responder, whose peer otherwise hears nothing until it has data to send
   * (src/peer/serverless.ts). Nothing once the stream is closed, or while packets are in flight.
   */
  ping(): void {
    if (this.destroyed || !this.#sent.isEmpty) return;
    const now = this.#clock.now();
    this.#sendPing(now);
    this.#armLossTimer(now);
  }

  /**
   * Abort on purpose: the peer sees PeerAbortedError (ERR_PEER_ABORTED) at once, rather than a
   * failure or, after an idle timeout, silence. Locally the stream is destroyed with an
   * AbortedError carrying `reason`. The RESET goes out RESET_COPIES times; `settle()` (and so
   * peer.close()) resolves once the last copy has left. Safe on a sealed path: every datagram,
   * RESETs included, is authenticated (decision 007), so nobody else can forge one.
   */
  abort(reason = 'the connection was aborted'): void {
    if (this.destroyed) return;
    this.#resetCode = ResetCode.Aborted;
    this.destroy(new AbortedError(reason));
  }

  // --- Duplex plumbing -------------------------------------------------------------------

  /** @internal */
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#sendBuffer.append(chunk);
    this.#scheduleFlush();
    if (this.#sendBuffer.length < this.#sendBufferSize) callback();
    else this.#pendingWrites.push(callback);
  }

  /** @internal */
  override _final(callback: (error?: Error | null) => void): void {
    this.#finalOffset = this.#sendBuffer.end;
    this.#finalCallback = callback;
    this.#scheduleFlush();
  }

  /** @internal */
  override _read(): void {
    this.#readPaused = false;
    this.#deliver();
  }

  /** @internal */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const graceful = error === null && this.#finAcked && this.#endPushed;
    // The ACK for the peer's FIN may still be waiting for the end of this I/O batch; send it
    // now, or the peer would wait a retransmission timeout for it.
    if (graceful && this.#received.pending) this.#sendAck(this.#clock.now());
    this.#closed = true;
    this.#lossTimer.dispose();
    this.#ackTimer.dispose();
    this.#paceTimer.dispose();
    this.#idleTimer.dispose();
    this.#pendingWrites = [];
    this.#finalCallback = undefined;
    if (!graceful && !(error instanceof StreamResetError) && !(error instanceof PeerAbortedError)) this.#sendResetCopies();
    this.#linger(graceful ? 'ack' : 'reset');
    if (debug.enabled) {
      const { packetsSent, packetsReceived, packetsLost, retransmits, tailLossProbes, retransmissionTimeouts, congestionEvents, cwnd, rtt, minRtt } = this.stats;
      debug('closed (%s): %j', graceful ? 'graceful' : (error?.message ?? 'aborted'),
        { packetsSent, packetsReceived, packetsLost, retransmits, tailLossProbes, retransmissionTimeouts, congestionEvents, cwnd, rtt, minRtt });
    }
    callback(error);
  }

  // --- Receiving ------------------------------------------------------------------------

  #attach(path: DatagramPath): void {
    if (this.#attached.has(path)) return;
    this.#attached.add(path);
    path.onDatagram((datagram) => this.#onDatagram(datagram));
  }

  #onDatagram(datagram: Uint8Array): void {
    let packet: StreamPacket;
    try {
      packet = decodePacket(datagram);
    } catch (error) {
      if (!(error instanceof StreamDecodeError)) throw error;
      this.#counters.datagramsDropped++;
      return;
    }
    if (packet.type === PacketType.Reset && !this.#resetIsAuthentic(packet)) {
      // Without the token it proves nothing: anyone who sees the 5-tuple could have sent it.
      this.#counters.datagramsDropped++;
      debug('RESET without the session token dropped');
      return;
    }
    if (this.#closed) {
      this.#answerWhileLingering(packet);
      return;
    }
    const now = this.#clock.now();
    this.#lastReceivedAt = now;
    this.#armIdleTimer();
    this.#counters.packetsReceived++;

    if (packet.maxStreamData > this.#peerMaxStreamData) this.#peerMaxStreamData = packet.maxStreamData;
    if (packet.type === PacketType.Reset) {
      debug('peer reset (code %d)', packet.resetCode);
      this.destroy(packet.resetCode === ResetCode.Aborted ? new PeerAbortedError() : new StreamResetError(packet.resetCode));
      return;
    }
    if (packet.ack !== undefined) this.#onAck(packet.ack, now);
    if (packet.type === PacketType.Data || packet.type === PacketType.Ping) {
      if (this.#received.has(packet.packetNumber)) {
        this.#received.recordDuplicate();
      } else if (packet.type === PacketType.Data && !this.#onData(packet)) {
        // Not acknowledged, so a well-behaved sender will send it again within our limits.
        this.#counters.datagramsDropped++;
      } else {
        this.#received.record(packet.packetNumber, now);
        // FIN, ACK-NOW and PING (a probe or keepalive) all want an answer without delay.
        if (packet.type === PacketType.Ping || packet.fin || packet.ackNow) this.#received.requestImmediate();
        // A long batch (recvmmsg + GRO) is acknowledged as it goes, not only at its end.
        else if (this.#received.overdue) this.#sendAck(now);
      }
    }
    if (!this.#closed) this.#scheduleFlush();
  }

  /** Accepts the stream bytes of a DATA packet; false when they break the stream's rules. */
  #onData(packet: { offset: number; payload: Uint8Array; fin: boolean }): boolean {
    const end = packet.offset + packet.payload.length;
    // Beyond the window we offered: flow-control violation (RFC 9000 §4.1).
    if (end > this.#advertisedMaxStreamData) return false;
    if (this.#finalSize !== undefined) {
      if (end > this.#finalSize || (packet.fin && end !== this.#finalSize)) return false;
    } else if (packet.fin) {
      if (end < this.#receiveBuffer.highestReceived) return false;
      this.#finalSize = end;
    }
    this.#receiveBuffer.insert(packet.offset, packet.payload);
    // Delivered at the end of the I/O batch (#flush), so a burst reaches the reader as one chunk.
    this.#deliveryPending = true;
    return true;
  }

  /** Hands in-order bytes to the reader while it wants them, then the end of the stream. */
  #deliver(): void {
    this.#deliveryPending = false;
    while (!this.#readPaused && !this.destroyed) {
      const piece = this.#receiveBuffer.takeContiguous(MAX_DELIVERY_CHUNK);
      if (piece === undefined) break;
      this.#counters.bytesReceived += piece.length;
      if (!this.push(piece)) this.#readPaused = true;
    }
    if (!this.#endPushed && this.#finalSize !== undefined && this.#receiveBuffer.nextOffset === this.#finalSize) {
      this.#endPushed = true;
      this.push(null);
    }
    // Window update: once the reader has freed half a window, tell the peer without waiting
    // for the next ACK (RFC 9293 §3.8.6.2.2 receiver-side silly window avoidance).
    const edge = this.#receiveBuffer.nextOffset + this.#receiveWindow;
    if (edge - this.#advertisedMaxStreamData >= this.#receiveWindow / 2) {
      this.#received.requestImmediate();
      this.#scheduleFlush();
    }
  }

  /** The window edge to put in an outgoing packet; it never moves backwards. */
  #advertise(): number {
    const edge = this.#receiveBuffer.nextOffset + this.#receiveWindow;
    if (edge > this.#advertisedMaxStreamData) this.#advertisedMaxStreamData = edge;
    return this.#advertisedMaxStreamData;
  }

  // --- Acknowledgements received ----------------------------------------------------------

  #onAck(ack: AckBlock, now: number): void {
    const { acked, clipped } = this.#sent.onAck(ack.ranges);
    if (clipped) this.#counters.datagramsDropped++;
    if (acked.length === 0) return;
    const newest = acked[acked.length - 1]!;
    // RTT sample only from the largest acknowledged, and only when it is newly acknowledged
    // (RFC 9002 §5.1); never ambiguous, as retransmissions have their own packet numbers.
    if (!clipped && newest.packetNumber === ack.ranges[0]!.end - 1) {
      this.#rtt.sample(now - newest.sentAt, ack.ackDelay / 1000);
    }
    for (const packet of acked) {
      this.#congestion.onPacketAcked(packet.packetNumber, packet.size, this.#cwndLimited);
      const end = packet.offset + packet.length + (packet.fin ? 1 : 0);
      if (end > packet.offset) {
        this.#acked.add(packet.offset, end);
        this.#lost.delete(packet.offset, end);
      }
    }
    // RFC 6298 §5.3: an ACK of new data restarts the timer; RFC 8985 §7.2: and re-allows a probe.
    this.#rtoStartedAt = now;
    this.#probeCount = 0;
    this.#detectLosses(now);
    this.#onAckedProgress();
  }

  #detectLosses(now: number): void {
    const rtt = Math.max(this.#rtt.srtt ?? this.#rtt.rto, this.#rtt.latestRtt ?? 0);
    const lossDelay = Math.max(TIME_THRESHOLD * rtt, this.#rtt.granularity);
    const flightSize = this.#sent.bytesInFlight;
    const { lost, lossTime } = this.#sent.detectLosses(now, lossDelay);
    this.#lossTime = lossTime;
    if (lost.length === 0) return;
    let lostBytes = 0;
    for (const packet of lost) lostBytes += packet.size;
    this.#congestion.onPacketsLost(lost[lost.length - 1]!.packetNumber, flightSize + lostBytes, this.#sent.nextPacketNumber - 1);
    for (const packet of lost) this.#onPacketLost(packet);
  }

  #onPacketLost(packet: SentPacket): void {
    this.#counters.packetsLost++;
    const end = packet.offset + packet.length + (packet.fin ? 1 : 0);
    if (end > packet.offset) this.#acked.forEachGap(packet.offset, end, (start, stop) => this.#lost.add(start, stop));
  }

  /** First stream position not yet acknowledged (TCP's SND.UNA). */
  #sendUna(): number {
    return this.#acked.min === 0 ? this.#acked.firstEnd! : 0;
  }

  #onAckedProgress(): void {
    const una = this.#sendUna();
    this.#sendBuffer.release(una);
    while (this.#pendingWrites.length > 0 && this.#sendBuffer.length < this.#sendBufferSize) {
      this.#pendingWrites.shift()!();
    }
    if (this.#finalOffset !== undefined && !this.#finAcked && una > this.#finalOffset) {
      this.#finAcked = true;
      const callback = this.#finalCallback;
      this.#finalCallback = undefined;
      callback?.();
    }
  }

  // --- Sending ----------------------------------------------------------------------------

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#closed) return;
    this.#flushScheduled = true;
    // At the end of this I/O batch: every datagram that arrived together is processed before
    // we answer, so one ACK covers a burst and freed window is filled in one go.
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#closed) return;
    if (this.#deliveryPending) this.#deliver();
    if (this.#closed) return;
    const now = this.#clock.now();
    this.#sendData();
    this.#sendAckIfDue(now);
    this.#armLossTimer(now);
  }

  /**
   * Sends what the congestion window, pacing and the peer's window allow. On a path with
   * `sendBatch` the burst's DATA packets are collected and handed over in one call at the end
   * (one system call for up to MAX_BURST datagrams instead of one each); they are accounted as
   * sent when encoded, as they would be one by one, and the burst ends within this call.
   */
  #sendData(): void {
    if (this.#path.sendBatch === undefined) {
      this.#sendBurst();
      return;
    }
    const batch: Uint8Array[] = [];
    this.#batch = batch;
    try {
      this.#sendBurst();
    } finally {
      this.#batch = undefined;
    }
    if (batch.length === 0) return;
    try {
      // A burst of one gains nothing from batching: it goes the ordinary way.
      if (batch.length === 1) this.#sendOne(batch[0]!, this.#headroom());
      else this.#path.sendBatch(batch);
    } catch (error) {
      this.destroy(new TransportError(`stream: path.sendBatch failed: ${(error as Error)?.message ?? error}`, { cause: error }));
    }
  }

  #sendBurst(): void {
    for (let burst = 0; !this.#closed; burst++) {
      if (burst === MAX_BURST) {
        // Let ACKs that arrived meanwhile be read before going on: a long burst would only
        // delay them, inflating the RTT estimate and the ACK clock.
        this.#scheduleFlush();
        return;
      }
      // Read the clock per packet: a long burst takes real time, which pacing and the send
      // times behind RTT samples and RACK must see.
      const now = this.#clock.now();
      const ack = this.#received.pending ? this.#received.buildAck(now, this.#ackRangeLimit()) : undefined;
      const overhead = HEADER_LENGTH + ackBlockLength(ack?.ranges.length ?? 0) + DATA_OFFSET_LENGTH;
      const segment = this.#nextSegment(this.#path.maxPayload - overhead);
      if (segment === undefined) {
        if (this.#sent.bytesInFlight < this.#congestion.cwnd / 2) this.#cwndLimited = false;
        return;
      }
      const size = overhead + segment.length;
      if (this.#sent.bytesInFlight + size > this.#congestion.cwnd) {
        this.#cwndLimited = true;
        return;
      }
      if (this.#pacing) {
        const wait = this.#pacer.delay(now, size, this.#congestion.cwnd, this.#rtt.srtt);
        if (wait > 0) {
          this.#cwndLimited = true;
          this.#paceTimer.set(now + wait);
          return;
        }
      }
      const ackNow = this.#isLastBeforeStall(segment, size);
      this.#sendSegment(segment, ack, now, ackNow);
    }
  }

  /** After this packet, will the sender stop until an ACK arrives (window full, or nothing left)? */
  #isLastBeforeStall(segment: Segment, size: number): boolean {
    if (this.#sent.bytesInFlight + size + this.#path.maxPayload > this.#congestion.cwnd) return true;
    if (segment.retransmission) {
      // A retransmission is cut from the front of the lowest lost range.
      const [, lostEnd] = this.#lost.range(0);
      if (this.#lost.rangeCount > 1 || lostEnd > segment.offset + segment.length + (segment.fin ? 1 : 0)) return false;
    }
    const nextNew = segment.retransmission ? this.#nextOffset : segment.offset + segment.length;
    if (Math.min(this.#sendBuffer.end, this.#peerMaxStreamData) > nextNew) return false;
    const finOut = this.#finSent || (segment.fin && !segment.retransmission);
    return this.#finalOffset === undefined || finOut;
  }

  /** What to send next: lost bytes first, then new bytes the peer's window admits, then a bare FIN. */
  #nextSegment(room: number): Segment | undefined {
    const finalOffset = this.#finalOffset;
    if (!this.#lost.isEmpty) {
      const [start, end] = this.#lost.range(0);
      const dataEnd = finalOffset === undefined ? end : Math.min(end, finalOffset);
      const length = Math.max(0, Math.min(dataEnd - start, room));
      const fin = finalOffset !== undefined && end > finalOffset && start + length === finalOffset;
      return { offset: start, length, fin, retransmission: true };
    }
    const limit = Math.min(this.#sendBuffer.end, this.#peerMaxStreamData);
    if (limit > this.#nextOffset) {
      const length = Math.min(limit - this.#nextOffset, room);
      return { offset: this.#nextOffset, length, fin: finalOffset === this.#nextOffset + length, retransmission: false };
    }
    if (finalOffset !== undefined && !this.#finSent && this.#nextOffset === finalOffset) {
      return { offset: finalOffset, length: 0, fin: true, retransmission: false };
    }
    return undefined;
  }

  #sendSegment(segment: Segment, ack: AckBlock | undefined, now: number, ackNow: boolean): void {
    const packetNumber = this.#sent.allocate();
    const pieces = segment.length > 0 ? this.#sendBuffer.read(segment.offset, segment.length) : [];
    const headroom = this.#headroom();
    const buffer = encodePacketWithPayload(
      {
        type: PacketType.Data,
        packetNumber,
        maxStreamData: this.#advertise(),
        ack,
        offset: segment.offset,
        payload: EMPTY,
        fin: segment.fin,
        ackNow,
      },
      pieces,
      headroom,
    );
    if (!this.#transmit(buffer, headroom)) return;
    if (ack !== undefined) this.#onAckSent();
    this.#onAckElicitingSent({
      packetNumber,
      sentAt: now,
      size: buffer.length - headroom,
      offset: segment.offset,
      length: segment.length,
      fin: segment.fin,
    });
    if (segment.retransmission) {
      this.#lost.delete(segment.offset, segment.offset + segment.length + (segment.fin ? 1 : 0));
      this.#counters.retransmits++;
      this.#counters.bytesRetransmitted += segment.length;
    } else {
      this.#nextOffset = segment.offset + segment.length;
      if (segment.fin) this.#finSent = true;
      this.#counters.bytesSent += segment.length;
    }
  }

  #sendPing(now: number): void {
    const packetNumber = this.#sent.allocate();
    const ack = this.#received.pending ? this.#received.buildAck(now, this.#ackRangeLimit()) : undefined;
    const datagram = encodePacket({ type: PacketType.Ping, packetNumber, maxStreamData: this.#advertise(), ack });
    if (!this.#transmit(datagram)) return;
    if (ack !== undefined) this.#onAckSent();
    this.#onAckElicitingSent({ packetNumber, sentAt: now, size: datagram.length, offset: 0, length: 0, fin: false });
  }

  #onAckElicitingSent(packet: SentPacket): void {
    // RFC 6298 §5.1: start the timer when data goes out and it is not running.
    if (this.#sent.isEmpty) this.#rtoStartedAt = packet.sentAt;
    this.#sent.onSent(packet);
    if (this.#pacing) this.#pacer.onSend(packet.size);
  }

  #sendAckIfDue(now: number): void {
    if (!this.#received.pending) {
      this.#ackTimer.cancel();
      return;
    }
    if (this.#received.due) this.#sendAck(now);
    else this.#ackTimer.set(this.#received.deadline(this.#maxAckDelay));
  }

  #sendAck(now: number): void {
    const ack = this.#received.buildAck(now, this.#ackRangeLimit());
    if (ack === undefined) return;
    // ACK packets are not numbered for acknowledgement; the field carries our next number.
    const datagram = encodePacket({
      type: PacketType.Ack,
      packetNumber: this.#sent.nextPacketNumber,
      maxStreamData: this.#advertise(),
      ack,
    });
    if (this.#transmit(datagram)) this.#onAckSent();
  }

  #onAckSent(): void {
    this.#received.onAckSent();
    this.#ackTimer.cancel();
  }

  #onAckTimer(): void {
    if (this.#closed || !this.#received.pending) return;
    this.#sendAck(this.#clock.now());
  }

  /** RESET_COPIES copies of our RESET, RESET_SPACING ms apart; `#resetCopies` settles after the last. */
  #sendResetCopies(): void {
    this.#sendReset();
    this.#resetCopies = new Promise((resolve) => {
      let left = RESET_COPIES - 1;
      const next = (): void => {
        if (left-- <= 0) return resolve();
        this.#clock.setTimeout(() => {
          this.#sendReset();
          next();
        }, RESET_SPACING);
      };
      next();
    });
  }

  #sendReset(): void {
    const datagram = encodePacket({
      type: PacketType.Reset,
      packetNumber: this.#sent.nextPacketNumber,
      maxStreamData: this.#advertisedMaxStreamData,
      ack: undefined,
      resetCode: this.#resetCode,
      resetToken: this.#resetTokens?.send,
    });
    this.#lastResetSentAt = this.#clock.now();
    try {
      this.#path.send(datagram);
    } catch {
      // The path is gone; the peer will time out instead.
    }
  }

  /** Spare bytes to leave in front of a DATA packet for the path's header (DatagramPath.headroom). */
  #headroom(): number {
    return this.#path.sendWithHeadroom === undefined ? 0 : (this.#path.headroom ?? 0);
  }

  /** Hands a datagram (after `headroom` bytes for the path) to the path; a path that throws aborts the stream. */
  #transmit(datagram: Uint8Array, headroom = 0): boolean {
    if (this.#batch !== undefined) {
      // Inside #sendData on a batching path: sent with the rest of the burst.
      this.#batch.push(datagram);
      this.#counters.packetsSent++;
      return true;
    }
    try {
      this.#sendOne(datagram, headroom);
    } catch (error) {
      this.destroy(new TransportError(`stream: path.send failed: ${(error as Error)?.message ?? error}`, { cause: error }));
      return false;
    }
    this.#counters.packetsSent++;
    return true;
  }

  #sendOne(datagram: Uint8Array, headroom: number): void {
    if (headroom > 0) this.#path.sendWithHeadroom!(datagram);
    else this.#path.send(datagram);
  }

  /** ACK ranges per packet: at most a quarter of the datagram, so data still fits beside them. */
  #ackRangeLimit(): number {
    const byRoom = Math.floor((this.#path.maxPayload / 4 - ackBlockLength(1)) / 8) + 1;
    return Math.max(1, Math.min(this.#maxAckRanges, byRoom));
  }

  // --- Timers -----------------------------------------------------------------------------

  /** Data is waiting only because the peer's window is closed (RFC 9293 §3.8.6.1 zero-window probing). */
  #windowBlocked(): boolean {
    return this.#lost.isEmpty && this.#sendBuffer.end > this.#nextOffset && this.#peerMaxStreamData <= this.#nextOffset;
  }

  /**
   * One timer covers loss detection: the RACK reordering window when a loss is pending, else a
   * tail loss probe after ~2·SRTT (RFC 8985 §7.2), else the RFC 6298 retransmission timeout;
   * with nothing in flight but a closed peer window, the persist timer.
   */
  #armLossTimer(now: number): void {
    if (this.#sent.isEmpty) {
      this.#lossTime = undefined;
      // Persist timer: one RTO after the last ACK (which found the window shut) or probe.
      if (this.#windowBlocked()) this.#lossTimer.set(Math.max(now, this.#rtoStartedAt + this.#rtt.rto));
      else this.#lossTimer.cancel();
      return;
    }
    if (this.#lossTime !== undefined) {
      this.#lossTimer.set(this.#lossTime);
      return;
    }
    const rtoAt = this.#rtoStartedAt + this.#rtt.rto;
    const probeAt = this.#probeDeadline();
    this.#lossTimer.set(probeAt === undefined ? rtoAt : Math.min(rtoAt, probeAt));
  }

  /**
   * When the next tail loss probe is due: 2·SRTT after the last send (RFC 8985 §7.2), doubling
   * with each unanswered probe as QUIC's PTO does (@see RFC 9002 §6.2.1), and only while it
   * comes before the RTO, which stays the backstop with its RFC 6298 semantics.
   */
  #probeDeadline(): number | undefined {
    const srtt = this.#rtt.srtt;
    if (this.#probeCount >= MAX_PROBES || srtt === undefined || this.#rtt.backoffCount > 0) return undefined;
    // RFC 8985 §7.2 adds the peer's worst-case delayed-ACK time when one packet is in flight;
    // here the last packet before a stall carries ACK-NOW, so no ACK is delayed behind it.
    const timeout = Math.max(2 * srtt, MIN_PROBE_TIMEOUT) * 2 ** this.#probeCount;
    const at = this.#sent.lastSentAt + timeout;
    return at < this.#rtoStartedAt + this.#rtt.rto ? at : undefined;
  }

  #onLossTimer(): void {
    if (this.#closed) return;
    const now = this.#clock.now();
    if (this.#sent.isEmpty) {
      if (this.#windowBlocked()) this.#sendPing(now);
    } else if (this.#lossTime !== undefined) {
      this.#detectLosses(now);
      this.#sendData();
    } else if (this.#probeDeadline() !== undefined && now < this.#rtoStartedAt + this.#rtt.rto) {
      this.#sendTailLossProbe(now);
    } else {
      this.#onRetransmissionTimeout(now);
    }
    this.#sendAckIfDue(now);
    this.#armLossTimer(now);
  }

  /**
   * RFC 8985 §7.3: send a probe beyond cwnd so the peer reveals a tail loss. Like a QUIC PTO
   * (@see RFC 9002 §6.2.4) two packets go out, so one lost probe (or its lost ACK) does not
   * leave the RTO as the only way out: the first carries data (new, else the newest packet's
   * bytes again), the second more data or a PING.
   */
  #sendTailLossProbe(now: number): void {
    this.#probeCount++;
    this.#counters.tailLossProbes++;
    for (let probe = 0; probe < 2 && !this.#closed; probe++) {
      const ack = this.#received.pending ? this.#received.buildAck(now, this.#ackRangeLimit()) : undefined;
      const room = this.#path.maxPayload - HEADER_LENGTH - ackBlockLength(ack?.ranges.length ?? 0) - DATA_OFFSET_LENGTH;
      let segment = this.#nextSegment(room);
      if (segment === undefined && probe === 0) {
        const newest = this.#sent.newest();
        if (newest !== undefined && (newest.length > 0 || newest.fin) && newest.offset >= this.#sendBuffer.start) {
          segment = { offset: newest.offset, length: newest.length, fin: newest.fin, retransmission: true };
        }
      }
      if (segment !== undefined) this.#sendSegment(segment, ack, now, true);
      else this.#sendPing(now);
    }
  }

  /** RFC 6298 §5.4-5.6 with RFC 5681 §3.1's loss window. */
  #onRetransmissionTimeout(now: number): void {
    this.#counters.retransmissionTimeouts++;
    if (this.#giveUpLastAck()) return;
    debug('retransmission timeout (rto %d ms, %d packets in flight)', this.#rtt.rto, this.#sent.count);
    const flightSize = this.#sent.bytesInFlight;
    for (const packet of this.#sent.declareAllLost()) this.#onPacketLost(packet);
    this.#congestion.onRetransmissionTimeout(flightSize, this.#sent.nextPacketNumber - 1);
    this.#rtt.backOff();
    this.#rtoStartedAt = now;
    this.#lossTime = undefined;
    const before = this.#sent.nextPacketNumber;
    this.#sendData();
    // Nothing to resend (only PINGs were out, or the window is shut): probe the path anyway.
    if (this.#sent.nextPacketNumber === before) this.#sendPing(now);
  }

  /**
   * LAST-ACK (RFC 9293 §3.3.2): the peer's FIN has arrived and every byte we sent is
   * acknowledged; only the ACK of our FIN is missing. The peer answers a retransmitted FIN even
   * after closing (it lingers), so silence through several backed-off RTOs means it is gone: it
   * sent its last ACK, which was lost, and exited. Every byte is known delivered, so the stream
   * finishes gracefully, as TCP's LAST-ACK gives up, instead of failing at the idle timeout.
   */
  #giveUpLastAck(): boolean {
    const finalOffset = this.#finalOffset;
    if (!this.#finSent || this.#finAcked || finalOffset === undefined || !this.#endPushed) return false;
    if (this.#sendUna() < finalOffset || this.#rtt.backoffCount < LAST_ACK_RETRIES) return false;
    debug('LAST-ACK: FIN unacknowledged after %d timeouts; every byte was acknowledged, finishing', this.#rtt.backoffCount);
    this.#counters.lastAckGiveUps++;
    this.#finAcked = true;
    this.#sent.declareAllLost();
    const callback = this.#finalCallback;
    this.#finalCallback = undefined;
    callback?.();
    return true;
  }

  #armIdleTimer(): void {
    let deadline = Infinity;
    if (this.#idleTimeout > 0) deadline = this.#lastReceivedAt + this.#idleTimeout;
    if (this.#keepaliveInterval > 0) {
      deadline = Math.min(deadline, Math.max(this.#lastReceivedAt, this.#lastKeepaliveAt) + this.#keepaliveInterval);
    }
    if (deadline !== Infinity) this.#idleTimer.set(deadline);
  }

  #onIdleTimer(): void {
    if (this.#closed) return;
    const now = this.#clock.now();
    const silence = now - this.#lastReceivedAt;
    if (this.#idleTimeout > 0 && silence >= this.#idleTimeout) {
      debug('idle timeout after %d ms', silence);
      this.destroy(
        new StreamTimeoutError(
          `stream: nothing heard from the peer for ${Math.round(silence)} ms, expected a packet within idleTimeout ${this.#idleTimeout} ms`,
        ),
      );
      return;
    }
    if (this.#keepaliveInterval > 0 && now - Math.max(this.#lastReceivedAt, this.#lastKeepaliveAt) >= this.#keepaliveInterval) {
      this.#lastKeepaliveAt = now;
      // A PING is ack-eliciting, so the peer's ACK proves the path alive (and refreshes NAT state).
      if (this.#sent.isEmpty) {
        this.#sendPing(now);
        this.#armLossTimer(now);
      }
    }
    this.#armIdleTimer();
  }

  // --- After close ------------------------------------------------------------------------

  /**
   * Like TCP's TIME-WAIT (RFC 9293 §3.3.2), stay reachable for a while after closing: our last
   * ACK may have been lost, and the peer cannot finish until it sees one. After an abort, answer
   * with RESET instead, so a peer that missed ours learns of it.
   */
  #linger(mode: 'ack' | 'reset'): void {
    this.#lingering = mode;
    this.#lastLingerActivityAt = this.#clock.now();
    // The peer retransmits until its idle timeout (a side that only received has no RTT sample,
    // so its RTO starts at 1 s and doubles); answer for as long as it may try.
    const time = this.#lingerTime ?? Math.max(this.#idleTimeout, 3 * Math.max(this.#rtt.rto, this.#rtt.initialRto));
    this.#lingerTimer = new DeadlineTimer(
      this.#clock,
      () => {
        this.#lingering = undefined;
        this.#settled();
        if (this.#closePath) this.#path.close?.();
      },
      { unref: true },
    );
    this.#lingerTimer.set(this.#clock.now() + time);
  }

  /**
   * Resolves once a closed stream no longer needs to linger: after a graceful close, when the
   * peer has been silent for 3 RTOs (had our last ACK been lost, its retransmission would have
   * arrived and been answered by then); after an abort, once the last copy of our RESET has
   * gone out (RESET_COPIES); when lingering ends, at once. Before
   * 'close', waits for it. An application about to exit awaits this, as the kernel keeps TCP's
   * TIME-WAIT after a process is gone.
   */
  settle(): Promise<void> {
    if (!this.#closed) return new Promise((resolve) => this.once('close', () => resolve(this.settle())));
    if (this.#lingering === 'reset') return this.#resetCopies ?? Promise.resolve();
    if (this.#lingering !== 'ack') return Promise.resolve();
    return new Promise((resolve) => {
      this.#settleWaiters.push(resolve);
      this.#armSettleTimer();
    });
  }

  #armSettleTimer(): void {
    if (this.#settleWaiters.length === 0) return;
    this.#settleTimer ??= new DeadlineTimer(this.#clock, () => this.#settled());
    this.#settleTimer.set(this.#lastLingerActivityAt + 3 * Math.max(this.#rtt.rto, this.#rtt.minRto));
  }

  #settled(): void {
    this.#settleTimer?.dispose();
    const waiters = this.#settleWaiters;
    this.#settleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  #answerWhileLingering(packet: StreamPacket): void {
    if (this.#lingering === undefined || packet.type === PacketType.Reset) return;
    const now = this.#clock.now();
    this.#lastLingerActivityAt = now;
    this.#armSettleTimer();
    if (this.#lingering === 'reset') {
      // At most one RESET per RTO, so a stream of stray packets cannot turn us into an amplifier.
      if (now - this.#lastResetSentAt >= this.#rtt.rto) this.#sendReset();
      return;
    }
    if (packet.type !== PacketType.Data && packet.type !== PacketType.Ping) return;
    if (this.#received.has(packet.packetNumber)) this.#received.recordDuplicate();
    else this.#received.record(packet.packetNumber, now);
    this.#sendAck(now);
  }
}

/** Creates one end of a stream over `path`; the peer calls the same on its end of the path. */
export function createStream(path: DatagramPath, options?: StreamOptions): StreamConnection {
  return new StreamConnection(path, options);
}

function checkOption(name: string, value: number | undefined, fallback: number, minimum: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < minimum) {
    throw new TransportError(`stream options: ${name} ${String(value)}, expected a number >= ${minimum}`);
  }
  return value;
}

function checkPath(path: DatagramPath): void {
  if (!Number.isInteger(path.maxPayload) || path.maxPayload < MIN_MAX_PAYLOAD) {
    throw new TransportError(`stream: path maxPayload ${path.maxPayload}, expected an integer >= ${MIN_MAX_PAYLOAD}`);
  }
  if (path.headroom !== undefined && (!Number.isInteger(path.headroom) || path.headroom < 0)) {
    throw new TransportError(`stream: path headroom ${path.headroom}, expected an integer >= 0`);
  }
}
