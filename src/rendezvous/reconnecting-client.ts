/**
 * A registration that survives its WebSocket. RendezvousClient is one connection: when it ends
 * (the server restarted, the TCP connection dropped, a NAT forgot the connection's mapping, the
 * server's pings stopped) a listening peer is deaf. This keeps a peer registered: after a drop it
 * connects again with exponential backoff and jitter and registers from scratch — a fresh hello
 * (nonce, token), a new STUN proof of the srflx from the same UDP socket (the mapping may have
 * moved), a new signed registration, and so a new dial-back — through a new RendezvousClient.
 *
 * What does not come back: a registration refused for a reason that retrying cannot change
 * (PERMANENT_REASONS: a bad signature, another protocol version, a newer registration of the same
 * peer id). Two processes with one key would otherwise take the registration from each other
 * forever. Those stop the loop and are reported ('disconnected' with `retryInMs: null`).
 *
 * Several servers (`urls`: nodes sharing one registry, docs/decisions/016-redis.md): the first
 * registration takes the first that answers; after a drop each attempt goes to the next one, so a
 * peer whose node died registers on another within the first backoff step. A server that shuts
 * down says so (`error shutdown`): that is a request to move, honoured at once, without backoff
 * (with a single server, it is retried with backoff as any other outage).
 *
 * While disconnected, connect() and updateSrflx() fail at once with RendezvousError reason
 * 'disconnected' (ERR_RENDEZVOUS): a caller that wants to wait can wait for 'reconnected'.
 * @see docs/decisions/004-rendezvous-protocol.md ("Reconnecting")
 */
import { EventEmitter } from 'node:events';
import { debuglog } from 'node:util';
import { AbortedError, NatpunchError } from '../errors.js';
import type { TransportAddress } from '../wire/index.js';
import { type ConnectOptions, type PunchInstruction, type RendezvousClientOptions, type SessionReport, type TrickleOptions, RendezvousClient } from './client.js';
import { RendezvousError, type RendezvousErrorReason, type RendezvousVerifyError } from './errors.js';
import type { Reachability, RelayOffer } from './messages.js';
import { ReplayCache } from './replay-cache.js';
import type { TrickleCandidate, TrickledCandidates } from './trickle.js';

const debug = debuglog('natpunch:rendezvous');

/** `PeerOptions.reconnect`: the backoff of registering again after the rendezvous connection drops. */
export interface ReconnectOptions {
  /** The first retry's delay, before jitter (default 500 ms). */
  minDelayMs?: number;
  /** The delay doubles per failed attempt up to this (default 30 s). */
  maxDelayMs?: number;
  /** A registration that lasted this long counts as stable: the next drop starts again at minDelayMs (default 60 s). */
  stableMs?: number;
  /** Uniform in [0, 1), for the jitter (default Math.random). */
  random?: () => number;
}

export interface ReconnectingClientOptions extends RendezvousClientOptions {
  /** Backoff tuning, or false to stay disconnected after a drop (RendezvousClient's behaviour). */
  reconnect?: ReconnectOptions | false;
  /**
   * Further rendezvous servers after `url`: nodes that share one registry, tried in turn when one
   * cannot be reached or goes away (default none).
   */
  urls?: readonly string[];
}

/** What 'disconnected' reports besides the reason. */
export interface DisconnectInfo {
  /** When the next attempt starts, ms; null: no more attempts (a permanent reason, or reconnect: false). */
  retryInMs: number | null;
}

/** What 'reconnected' reports. */
export interface ReconnectInfo {
  /** The srflx the new registration proved (null: no STUN server answered). */
  srflx: string | null;
  /** Attempts it took, this one included. */
  attempts: number;
  /** How long the peer was not registered, ms. */
  downMs: number;
}

/**
 * Reasons a registration (or the server, closing a registered connection) gives that the same
 * peer cannot fix by trying again. Everything else — closed connections, timeouts, 'shutdown',
 * 'server-full', 'rate-limited', an unproven srflx, codes this version does not know — is retried.
 */
export const PERMANENT_REASONS: ReadonlySet<string> = new Set<RendezvousErrorReason>([
  /** A newer registration of this peer id took over: fighting it back would loop forever. */
  'replaced',
  /** The server does not accept this key's signatures. */
  'bad-signature',
  /** The server speaks another protocol version. */
  'unsupported-version',
  /** The server finds this client's messages malformed: the next ones would be too. */
  'invalid', 'bad-json', 'too-large', 'unknown-type', 'bad-nonce',
]);

/** Whether an error ending a registration (or an attempt at one) should stop reconnecting. */
export function isPermanent(error: unknown): boolean {
  if (error instanceof RendezvousError) return PERMANENT_REASONS.has(error.reason);
  // An abort is close(); any other NatpunchError from registering (UsageError: a socket closed
  // under it, bad options) will not change on its own. Anything else (a thrown socket error) is
  // treated as a failed attempt.
  return NatpunchError.is(error) && !(error instanceof AbortedError);
}

/**
 * Exponential backoff with "equal jitter": attempt n waits d/2 + random × d/2 with
 * d = min(max, min × 2^n), so retries never come at once yet spread out, and a server that
 * restarts is not met by every peer in the same instant.
 * @see Marc Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015
 */
export class Backoff {
  readonly #minMs: number;
  readonly #maxMs: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: ReconnectOptions = {}) {
    this.#minMs = options.minDelayMs ?? 500;
    this.#maxMs = Math.max(this.#minMs, options.maxDelayMs ?? 30_000);
    this.#random = options.random ?? Math.random;
  }

  /** The next delay, ms; each call doubles the base up to the maximum. */
  next(): number {
    const base = Math.min(this.#maxMs, this.#minMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.round(base / 2 + this.#random() * (base / 2));
  }

  reset(): void {
    this.#attempt = 0;
  }
}

export interface ReconnectingRendezvousClient {
  on(event: 'punch', listener: (instruction: PunchInstruction) => void): this;
  on(event: 'candidates', listener: (batch: TrickledCandidates) => void): this;
  on(event: 'rejected', listener: (error: RendezvousVerifyError) => void): this;
  /** The registration was lost (or an attempt at a new one refused for good: then `retryInMs` is null). */
  on(event: 'disconnected', listener: (reason: RendezvousError, info: DisconnectInfo) => void): this;
  on(event: 'reconnected', listener: (info: ReconnectInfo) => void): this;
  once(event: 'punch', listener: (instruction: PunchInstruction) => void): this;
  once(event: 'candidates', listener: (batch: TrickledCandidates) => void): this;
  once(event: 'rejected', listener: (error: RendezvousVerifyError) => void): this;
  once(event: 'disconnected', listener: (reason: RendezvousError, info: DisconnectInfo) => void): this;
  once(event: 'reconnected', listener: (info: ReconnectInfo) => void): this;
}

export class ReconnectingRendezvousClient extends EventEmitter {
  readonly peerId: string;
  readonly #options: ReconnectingClientOptions;
  readonly #backoff: Backoff;
  readonly #stableMs: number;
  readonly #replay: ReplayCache;
  /** Aborted by close(): ends a registration attempt in flight. */
  readonly #closing = new AbortController();
  /** `url` and then `urls`, each once; #current indexes the one in use (or to try next). */
  readonly #urls: readonly string[];
  #current = 0;
  #client: RendezvousClient | undefined;
  #lastRelays: readonly RelayOffer[] = [];
  /** The last registration's results, kept while disconnected. */
  #last: LastRegistration;
  #registeredAt: number;
  #downSince = 0;
  #attempts = 0;
  #lastReason: RendezvousError | undefined;
  #retryAt: number | null = null;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(options: ReconnectingClientOptions, replay: ReplayCache, client: RendezvousClient, current: number) {
    super();
    this.peerId = client.peerId;
    this.#options = options;
    this.#urls = serverUrls(options);
    this.#current = current;
    this.#backoff = new Backoff(options.reconnect || {});
    this.#stableMs = (options.reconnect || {}).stableMs ?? 60_000;
    this.#replay = replay;
    this.#last = snapshot(client);
    this.#registeredAt = performance.now();
    this.#adopt(client);
  }

  /**
   * Registers once (as RendezvousClient.connect: failures here throw, nothing is retried), then
   * keeps the registration. `options.signal` aborts only this first registration.
   */
  static async connect(options: ReconnectingClientOptions): Promise<ReconnectingRendezvousClient> {
    const replay = options.replayCache ?? new ReplayCache({ now: options.now });
    const urls = serverUrls(options);
    const failures: unknown[] = [];
    for (const [i, url] of urls.entries()) {
      try {
        const client = await RendezvousClient.connect({ ...options, url, replayCache: replay });
        return new ReconnectingRendezvousClient(options, replay, client, i);
      } catch (error) {
        // An abort ends it; any other failure leaves the next server to try.
        if (options.signal?.aborted || error instanceof AbortedError) throw error;
        debug('registration at %s failed: %s', url, (error as Error)?.message);
        failures.push(error);
      }
    }
    if (failures.length === 1) throw failures[0];
    const first = failures[0];
    const reason = first instanceof RendezvousError ? first.reason : 'unreachable';
    throw new RendezvousError(reason, `no rendezvous server registered this peer: ${failures.map((e) => (e as Error)?.message).join('; ')}`, { cause: first });
  }

  /** The rendezvous server in use now (or to be tried next while disconnected). */
  get url(): string {
    return this.#urls[this.#current]!;
  }

  /** Whether a registration is live now. */
  get connected(): boolean {
    return this.#client !== undefined;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The srflx of the live registration, or of the last one while disconnected. */
  get srflx(): string | null {
    return this.#client?.srflx ?? this.#last.srflx;
  }

  get stunServer(): TransportAddress | null {
    return this.#client?.stunServer ?? this.#last.stunServer;
  }

  get tcpStunServer(): TransportAddress | null {
    return this.#client?.tcpStunServer ?? this.#last.tcpStunServer;
  }

  /** The dial-back result of the live registration; null while disconnected (nobody dials a peer that is not registered). */
  /** The relays the current registration was offered (the last one's while reconnecting). */
  get relays(): readonly RelayOffer[] {
    if (this.#client) this.#lastRelays = this.#client.relays;
    return this.#lastRelays;
  }

  /** The current client's incoming sessions being decided or waiting for their punch (RendezvousClient.pendingIncoming). */
  get pendingIncoming(): number {
    return this.#client?.pendingIncoming ?? 0;
  }

  get serverReachability(): Reachability | null {
    return this.#client?.serverReachability ?? null;
  }

  /**
   * RendezvousClient.connect through the live registration.
   * @throws RendezvousError 'disconnected' at once when there is none (or 'closed' after close())
   */
  async connect(target: string, options: ConnectOptions = {}): Promise<PunchInstruction> {
    return this.#live('connect').connect(target, options);
  }

  /** RendezvousClient.probe on the live registration: on no answer it is dropped and registered again. */
  async probe(timeoutMs: number): Promise<void> {
    return this.#live('probe').probe(timeoutMs);
  }

  /** RendezvousClient.updateSrflx through the live registration (the same throws as connect()). */
  async updateSrflx(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<string> {
    return this.#live('update').updateSrflx(options);
  }

  /**
   * RendezvousClient.trickle through the live registration. Sessions belong to the connection
   * they were punched on: after a reconnection the old ones are 'unknown-session'.
   */
  async trickle(session: string, candidates: readonly TrickleCandidate[], options: TrickleOptions = {}): Promise<void> {
    return this.#live('trickle').trickle(session, candidates, options);
  }

  /**
   * RendezvousClient.report through the live registration (false when the server did not
   * negotiate 'report'). After a reconnection the old sessions are 'unknown-session'.
   */
  async report(session: string, report: SessionReport, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<boolean> {
    return this.#live('report').report(session, report, options);
  }

  /**
   * RendezvousClient.onCandidates on the live registration (the one the session's punch came
   * from); while disconnected there is no session to hear from, and nothing is ever called.
   */
  onCandidates(session: string, listener: (batch: TrickledCandidates) => void): () => void {
    return this.#client?.onCandidates(session, listener) ?? (() => undefined);
  }

  /** Closes the live registration, or stops the backoff at once: no timer is left. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#closing.abort(new AbortedError('the rendezvous client was closed'));
    const client = this.#client;
    this.#client = undefined;
    client?.close();
    if (!this.#options.replayCache) this.#replay.clear();
  }

  #live(what: string): RendezvousClient {
    if (this.#client) return this.#client;
    if (this.#closed) throw new RendezvousError('closed', `rendezvous ${what}: the client is closed`);
    const why = this.#lastReason ? ` (${this.#lastReason.reason}: ${this.#lastReason.message})` : '';
    const when = this.#retryAt === null ? 'not reconnecting' : `reconnecting in ${Math.max(0, Math.round(this.#retryAt - performance.now()))} ms`;
    throw new RendezvousError('disconnected', `rendezvous ${what}: this peer is not registered at the rendezvous server${why}; ${when}`);
  }

  #adopt(client: RendezvousClient): void {
    this.#client = client;
    client.on('punch', (instruction) => this.emit('punch', instruction));
    client.on('candidates', (batch) => this.emit('candidates', batch));
    client.on('rejected', (error) => this.emit('rejected', error));
    client.once('close', (reason) => this.#onClose(client, reason));
  }

  #onClose(client: RendezvousClient, reason: RendezvousError): void {
    if (client !== this.#client || this.#closed) return;
    this.#last = snapshot(client);
    this.#client = undefined;
    this.#downSince = performance.now();
    this.#attempts = 0;
    this.#lastReason = reason;
    if (this.#downSince - this.#registeredAt >= this.#stableMs) this.#backoff.reset();
    debug('%s: registration lost (%s: %s)', this.peerId.slice(0, 8), reason.reason, reason.message);
    // The server went away: the next attempt goes to the next one (when there are several), at
    // once if the server asked its peers to move. With one server, a shutdown is an outage like
    // any other: coming straight back would meet the server still closing.
    this.#next();
    this.#retryOrStop(reason, true, reason.reason === 'shutdown' && this.#urls.length > 1);
  }

  #next(): void {
    this.#current = (this.#current + 1) % this.#urls.length;
  }

  /**
   * Schedules the next attempt, or stops for good; reports either ('disconnected') when `report`
   * or stopping. `now`: the server asked this peer to move (shutdown): no backoff for this one.
   */
  #retryOrStop(reason: RendezvousError, report: boolean, now = false): void {
    if (this.#options.reconnect === false || isPermanent(reason)) {
      this.#retryAt = null;
      debug('%s: not reconnecting (%s)', this.peerId.slice(0, 8), reason.reason);
      this.emit('disconnected', reason, { retryInMs: null });
      return;
    }
    const delay = now ? 0 : this.#backoff.next();
    this.#retryAt = performance.now() + delay;
    this.#timer = setTimeout(() => void this.#attempt(), delay);
    if (report) this.emit('disconnected', reason, { retryInMs: delay });
  }

  async #attempt(): Promise<void> {
    this.#timer = undefined;
    if (this.#closed) return;
    this.#attempts++;
    let client: RendezvousClient;
    try {
      client = await RendezvousClient.connect({ ...this.#options, url: this.url, signal: this.#closing.signal, replayCache: this.#replay });
    } catch (error) {
      if (this.#closed) return;
      this.#next();
      const reason = error instanceof RendezvousError ? error
        : new RendezvousError(isPermanent(error) ? 'invalid' : 'closed', `rendezvous reconnect: ${(error as Error).message}`, { cause: error });
      this.#lastReason = reason;
      debug('%s: attempt %d failed (%s: %s)', this.peerId.slice(0, 8), this.#attempts, reason.reason, reason.message);
      this.#retryOrStop(reason, false);
      return;
    }
    if (this.#closed) {
      client.close();
      return;
    }
    this.#retryAt = null;
    this.#lastReason = undefined;
    this.#registeredAt = performance.now();
    this.#adopt(client);
    const info: ReconnectInfo = { srflx: client.srflx, attempts: this.#attempts, downMs: Math.round(this.#registeredAt - this.#downSince) };
    debug('%s: registered again after %d attempts, %d ms (srflx %s)', this.peerId.slice(0, 8), info.attempts, info.downMs, info.srflx);
    this.emit('reconnected', info);
  }
}

/** `url` and `urls`, without repeats, in order. */
function serverUrls(options: ReconnectingClientOptions): string[] {
  return [...new Set([options.url, ...(options.urls ?? [])])];
}

/** What a registration found out, kept through a disconnection. */
interface LastRegistration {
  srflx: string | null;
  stunServer: TransportAddress | null;
  tcpStunServer: TransportAddress | null;
}

function snapshot(client: RendezvousClient): LastRegistration {
  return { srflx: client.srflx, stunServer: client.stunServer, tcpStunServer: client.tcpStunServer };
}
