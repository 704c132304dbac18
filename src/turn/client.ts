/**
 * The TURN client: one allocation on a TURN server, its permissions and channels, kept alive
 * until `close()`, and data to and from peers through the relay.
 *
 * It owns no socket: messages go through a `TurnTransport` (client-transport.ts), so the peer
 * can run TURN over the one UDP socket that carries everything else. Timers run on an injected
 * `Clock`, so the in-process network (src/sim) can drive it on virtual time.
 * @see RFC 8656 (TURN); RFC 8489 §6.2 (transactions), §9.2 (long-term credentials)
 */

import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { debuglog } from 'node:util';
import { type Clock, realClock } from '../clock.js';
import { AbortedError, NatpunchError, StunDecodeError, TransactionTimeoutError, TurnError, UsageError } from '../errors.js';
import { errorFromResponse } from '../stun/error-response.js';
import { type RetransmissionOptions, retransmissionSchedule } from '../stun/retransmission.js';
import {
  type Attribute, type StunMessage, type TransportAddress,
  AttrType, MAX_CHANNEL, MIN_CHANNEL, MessageClass, Method, StunErrorCode,
  channelNumber, decodeMessage, encodeMessage, formatAddress, getAttribute, inspectIntegrity,
  isStunMessage, lifetime, longTermKey, methodName, newTransactionId, nonce, realm, reasonPhrase,
  requestedTransport, TRANSPORT_UDP, username as usernameCodec, xorMappedAddress, xorPeerAddress,
  xorRelayedAddress,
} from '../wire/index.js';
import { CHANNEL_DATA_HEADER, acceptedChannel, channelDataLength, encodeChannelData, isChannelData } from './channel-data.js';
import type { TurnTransport, UdpTurnTransport } from './client-transport.js';
import { RefreshSchedule } from './refresh-schedule.js';

const debug = debuglog('natpunch:turn');

/** Default wait for a response over TCP/TLS, where nothing is retransmitted. RFC 8489 §6.2.2 says 39.5 s; a relay that slow is no use to a peer. */
export const DEFAULT_STREAM_TRANSACTION_TIMEOUT = 10_000;
/** Permissions last 300 s; refresh them at 240 s. @see RFC 8656 §9 */
export const PERMISSION_REFRESH_MS = 240_000;
export const PERMISSION_LIFETIME_S = 300;
/** Channel bindings last 600 s; refresh them at 480 s. @see RFC 8656 §12 */
export const CHANNEL_REFRESH_MS = 480_000;
export const CHANNEL_LIFETIME_S = 600;
/** How many times a request is re-sent with a fresh nonce after 438 (Stale Nonce) before giving up. */
const MAX_STALE_NONCE_RETRIES = 3;
/** CreatePermission carries at most this many XOR-PEER-ADDRESS per request (bounds the message size). */
const MAX_PEERS_PER_PERMISSION_REQUEST = 32;
/** The Refresh with LIFETIME 0 that `close()` sends is best effort: it gives up after about this long. */
const CLOSE_RETRANSMISSION: RetransmissionOptions = { rc: 3, rm: 4 };
const CLOSE_STREAM_TIMEOUT = 2_000;

/**
 * When to refresh an allocation that lives `seconds`: a minute before it expires, but never
 * before half its lifetime (short lifetimes leave room for a retransmitted Refresh).
 * @see RFC 8656 §8
 */
export function allocationRefreshDelayMs(seconds: number): number {
  return Math.max(seconds - 60, seconds / 2) * 1000;
}

export interface TurnClientOptions {
  /** Timers for retransmissions, timeouts and refreshes (default: the real ones). */
  clock?: Clock;
  /** The RFC 8489 §6.2.1 schedule over UDP (default RTO 500 ms, Rc 7, Rm 16: 39.5 s). */
  retransmission?: RetransmissionOptions;
  /** Over TCP/TLS: how long to wait for a response, in ms (default 10 s). */
  streamTransactionTimeoutMs?: number;
}

export interface AllocateOptions {
  username: string;
  password: string;
  /** LIFETIME to ask for, in seconds; the server decides (coturn: default 600, at most 3600). */
  lifetimeSeconds?: number;
  signal?: AbortSignal;
}

export interface TurnAllocation {
  /** The relayed transport address peers send to. @see RFC 8656 §18.5 */
  relayed: TransportAddress;
  /** This client's server-reflexive address as the server sees it. @see RFC 8656 §7.3 */
  mapped: TransportAddress;
  /** Granted lifetime in seconds. */
  lifetime: number;
}

/** What a background refresh was keeping alive. */
export type RefreshTarget = 'allocation' | 'permission' | 'channel';

export interface TurnClientEvents {
  /** Application data from `peer`, by Data indication or on a channel. `data` is a view into the received message. */
  data: [peer: TransportAddress, data: Uint8Array];
  /** A background refresh failed; `final` when it stopped trying (the state expires). */
  refreshError: [error: Error, target: RefreshTarget, final: boolean];
  /** The client closed: by `close()` (no error), or because the transport ended or the allocation was lost. */
  close: [error: Error | undefined];
}

interface Transaction {
  method: number;
  /** The key the response must be signed with, once the server has challenged us. */
  key: Uint8Array | undefined;
  settle(outcome: StunMessage | Error): void;
}

interface Credentials {
  username: string;
  password: string;
  realm: string;
  nonce: string;
  key: Uint8Array;
}

/** Hints for the errors a client can act on. @see RFC 8656 §7.2, §18; RFC 8489 §9.2.5 */
const HINTS: ReadonlyMap<number, string> = new Map([
  [StunErrorCode.Unauthenticated, 'the server refused the credentials: check the username and password (for REST credentials, the shared secret and the clock)'],
  [StunErrorCode.Forbidden, 'the server forbids it (a peer address outside what it relays to, or a user not allowed to relay)'],
  [StunErrorCode.AllocationMismatch, 'the allocation does not match this 5-tuple: Allocate found one already there, other requests found none (expired or freed); allocate from another local port, or again'],
  [StunErrorCode.WrongCredentials, 'the credentials differ from those the allocation was made with'],
  [StunErrorCode.UnsupportedTransportProtocol, 'the server does not relay UDP'],
  [StunErrorCode.AllocationQuotaReached, 'this user has as many allocations as the server allows: close one first'],
  [StunErrorCode.InsufficientCapacity, 'the server has no relay address or port left: try later or another server'],
]);

/** Status and reason phrase of an error response (status 0 when ERROR-CODE is missing or malformed). */
function errorOf(message: StunMessage): { status: number; reason: string } {
  return errorFromResponse(message);
}

function turnErrorFrom(method: number, message: StunMessage, context = ''): TurnError {
  const { status, reason } = errorOf(message);
  const hint = HINTS.get(status);
  const phrase = reason || reasonPhrase(status);
  return new TurnError(status, reason, `TURN ${methodName(method)}${context}: ${status} ${phrase}${hint ? `: ${hint}` : ''}`);
}

/** The server answered no (retrying the same request is pointless), as opposed to no answer. */
function refusedByServer(error: Error): boolean {
  return error instanceof TurnError && error.status !== 0;
}

/** An address as a frozen TransportAddress, its family from the parsed text. */
function peerAddress(ip: string, port: number): TransportAddress {
  const family = isIP(ip);
  if (family !== 4 && family !== 6) throw new UsageError(`TURN: peer "${ip}" is not an IP address`);
  return Object.freeze({ family, address: ip, port });
}

export declare interface TurnClient {
  on<E extends keyof TurnClientEvents>(event: E, listener: (...args: TurnClientEvents[E]) => void): this;
  once<E extends keyof TurnClientEvents>(event: E, listener: (...args: TurnClientEvents[E]) => void): this;
  off<E extends keyof TurnClientEvents>(event: E, listener: (...args: TurnClientEvents[E]) => void): this;
  emit<E extends keyof TurnClientEvents>(event: E, ...args: TurnClientEvents[E]): boolean;
}

/**
 * A TURN client over one transport: `allocate()`, then `createPermission()` / `bindChannel()`
 * for peers, `send()` to them and `'data'` from them; `close()` frees the allocation.
 *
 * Every response must carry MESSAGE-INTEGRITY made with the long-term key; responses that do
 * not are dropped as if never received (RFC 8489 §9.2.5), except the 401 and 438 challenges,
 * which cannot be signed with a key the client does not have yet.
 */
export class TurnClient extends EventEmitter {
  readonly transport: TurnTransport;
  readonly #clock: Clock;
  readonly #retransmission: RetransmissionOptions;
  readonly #streamTimeoutMs: number;
  readonly #pending = new Map<string, Transaction>();
  #credentials: Credentials | undefined;
  #allocation: TurnAllocation | undefined;
  #allocating = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #allocationRefresh: RefreshSchedule | undefined;
  /** IPs with a permission this client keeps refreshed. */
  readonly #permitted = new Set<string>();
  #permissionRefresh: RefreshSchedule | undefined;
  /** Bound channels both ways; peer lookup is address then port, so `send` builds no string key. */
  readonly #channelByPeer = new Map<string, Map<number, number>>();
  readonly #peerByChannel = new Map<number, TransportAddress>();
  readonly #channelRefresh = new Map<number, RefreshSchedule>();
  readonly #binding = new Map<string, Promise<number>>();
  #nextChannel = MIN_CHANNEL;

  constructor(transport: TurnTransport, options: TurnClientOptions = {}) {
    super();
    this.transport = transport;
    this.#clock = options.clock ?? realClock;
    this.#retransmission = options.retransmission ?? {};
    this.#streamTimeoutMs = options.streamTransactionTimeoutMs ?? DEFAULT_STREAM_TRANSACTION_TIMEOUT;
    retransmissionSchedule(this.#retransmission); // validate now, not on the first request
    transport.onReceive((bytes) => this.#receive(bytes));
    transport.onChannelData?.((channel, data) => this.#channelData(channel, data));
    transport.onClose?.((error) => this.#shutdown(error));
  }

  /** The allocation, once `allocate()` has succeeded and until the client closes. */
  get allocation(): TurnAllocation | undefined {
    return this.#allocation;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Create the allocation: an Allocate without credentials, answered by 401 with REALM and
   * NONCE; then again signed with the long-term key MD5(username:realm:password). A 438 (Stale
   * Nonce) is answered by retrying with the new nonce.
   * @throws TurnError (401 wrong credentials, 437 an allocation exists on this 5-tuple, 486
   *   quota, 508 capacity, …), TransactionTimeoutError, AbortedError
   * @see RFC 8656 §7.1, §7.3; RFC 8489 §9.2.3
   */
  async allocate(options: AllocateOptions): Promise<TurnAllocation> {
    this.#checkOpen();
    if (this.#allocation || this.#allocating) throw new UsageError('TURN allocate: this client already has an allocation (one per client; use another transport for another)');
    this.#allocating = true;
    try {
      const attributes: Attribute[] = [{ type: AttrType.RequestedTransport, value: requestedTransport.encode(TRANSPORT_UDP) }];
      if (options.lifetimeSeconds !== undefined) attributes.push({ type: AttrType.Lifetime, value: lifetime.encode(options.lifetimeSeconds) });
      // RFC 8656 §7.1: the first Allocate carries no credentials; the server's 401 says the realm and nonce.
      let response = await this.#transact(Method.Allocate, attributes, undefined, options.signal);
      if (response.messageClass === MessageClass.ErrorResponse && errorOf(response).status === StunErrorCode.Unauthenticated) {
        this.#takeChallenge(response, options.username, options.password);
        response = await this.#authenticated(Method.Allocate, attributes, options.signal);
      }
      if (response.messageClass === MessageClass.ErrorResponse) {
        const { status } = errorOf(response);
        throw turnErrorFrom(Method.Allocate, response, status === StunErrorCode.Unauthenticated && this.#credentials
          ? ` as "${this.#credentials.username}" in realm "${this.#credentials.realm}"` : '');
      }
      const allocation = this.#readAllocation(response);
      this.#checkOpen();
      this.#allocation = allocation;
      this.#allocationRefresh = new RefreshSchedule({
        clock: this.#clock,
        run: () => this.refresh(),
        delayMs: allocationRefreshDelayMs,
        isFatal: refusedByServer,
        onError: (error, final) => {
          this.emit('refreshError', error, 'allocation', final);
          if (final) this.#shutdown(new TurnError(0, 'allocation lost', `TURN: the allocation could not be refreshed: ${error.message}`, { cause: error }));
        },
      });
      this.#allocationRefresh.restart(allocation.lifetime);
      debug('allocated %s (mapped %s) for %d s', formatAddress(allocation.relayed), formatAddress(allocation.mapped), allocation.lifetime);
      return allocation;
    } finally {
      this.#allocating = false;
    }
  }

  /**
   * Refresh the allocation for `lifetimeSeconds` (default: the server's default), or delete it
   * with 0. Resolves with the granted lifetime. Refreshes run by themselves before expiry; call
   * this only to change the lifetime.
   * @see RFC 8656 §8
   */
  async refresh(lifetimeSeconds?: number): Promise<number> {
    this.#checkOpen();
    return this.#refresh(lifetimeSeconds);
  }

  async #refresh(lifetimeSeconds?: number, closing = false): Promise<number> {
    if (!this.#allocation) throw new UsageError('TURN refresh: no allocation; call allocate() first');
    const attributes: Attribute[] = lifetimeSeconds === undefined ? [] : [{ type: AttrType.Lifetime, value: lifetime.encode(lifetimeSeconds) }];
    const response = await this.#authenticated(Method.Refresh, attributes, undefined, closing);
    if (response.messageClass === MessageClass.ErrorResponse) {
      // RFC 8656 §8: a 437 to a deleting Refresh means a retransmission found the allocation already deleted.
      if (lifetimeSeconds === 0 && errorOf(response).status === StunErrorCode.AllocationMismatch) return 0;
      throw turnErrorFrom(Method.Refresh, response);
    }
    const value = getAttribute(response, AttrType.Lifetime);
    const granted = value ? lifetime.decode(value) : lifetimeSeconds ?? 0;
    if (granted > 0) {
      this.#allocation = { ...this.#allocation, lifetime: granted };
      this.#allocationRefresh?.restart(granted);
    }
    return granted;
  }

  /**
   * Install permissions for `ips` (one request may carry several XOR-PEER-ADDRESS), and keep
   * them refreshed every 4 minutes (they last 5). Without one, the server drops what a peer
   * sends to the relayed address, and what this client sends to the peer.
   * @see RFC 8656 §9, §10
   */
  async createPermission(ips: readonly string[], options: { signal?: AbortSignal } = {}): Promise<void> {
    this.#checkOpen();
    if (!this.#allocation) throw new UsageError('TURN createPermission: no allocation; call allocate() first');
    const peers = ips.map((ip) => peerAddress(ip, 0));
    await this.#permit(peers, options.signal);
    for (const peer of peers) this.#permitted.add(peer.address);
    this.#keepPermissions();
  }

  async #permit(peers: readonly TransportAddress[], signal?: AbortSignal): Promise<void> {
    for (let i = 0; i < peers.length; i += MAX_PEERS_PER_PERMISSION_REQUEST) {
      const chunk = peers.slice(i, i + MAX_PEERS_PER_PERMISSION_REQUEST);
      // The transaction id XORs the addresses, so the attributes are built per attempt.
      const response = await this.#authenticated(Method.CreatePermission, (id) => chunk.map((peer) => ({ type: AttrType.XorPeerAddress, value: xorPeerAddress.encode(peer, id) })), signal);
      if (response.messageClass === MessageClass.ErrorResponse) {
        throw turnErrorFrom(Method.CreatePermission, response, ` for ${chunk.map((p) => p.address).join(', ')}`);
      }
    }
  }

  #keepPermissions(): void {
    if (this.#permissionRefresh || this.#closed) return;
    this.#permissionRefresh = new RefreshSchedule({
      clock: this.#clock,
      run: async () => {
        await this.#permit([...this.#permitted].map((ip) => peerAddress(ip, 0)));
        return PERMISSION_LIFETIME_S;
      },
      delayMs: () => PERMISSION_REFRESH_MS,
      isFatal: refusedByServer,
      onError: (error, final) => this.emit('refreshError', error, 'permission', final),
    });
    this.#permissionRefresh.restart(PERMISSION_LIFETIME_S);
  }

  /**
   * Bind a channel (0x4000 up) to `peer`, so data to and from it travels as ChannelData with a
   * 4-byte header instead of a 36-byte Send/Data indication; also installs the permission for
   * its IP. Resolves with the channel number; a peer already bound gets its channel back.
   * Channels are refreshed every 8 minutes (they last 10), the permission every 4.
   * @see RFC 8656 §12.1, §12.2
   */
  bindChannel(peer: TransportAddress, options: { signal?: AbortSignal } = {}): Promise<number> {
    try {
      this.#checkOpen();
      if (!this.#allocation) throw new UsageError('TURN bindChannel: no allocation; call allocate() first');
    } catch (error) {
      return Promise.reject(error);
    }
    const bound = this.#channelByPeer.get(peer.address)?.get(peer.port);
    if (bound !== undefined) return Promise.resolve(bound);
    const key = formatAddress(peer);
    const inFlight = this.#binding.get(key);
    if (inFlight) return inFlight;
    if (this.#nextChannel > MAX_CHANNEL) return Promise.reject(new UsageError(`TURN bindChannel: all ${MAX_CHANNEL - MIN_CHANNEL + 1} channels are used`));
    const channel = this.#nextChannel++;
    const frozen = peerAddress(peer.address, peer.port);
    const promise = this.#bind(channel, frozen, options.signal).then(() => {
      // RFC 8656 §12: no ChannelData before the success response, so the channel is usable only now.
      let ports = this.#channelByPeer.get(frozen.address);
      if (!ports) this.#channelByPeer.set(frozen.address, (ports = new Map()));
      ports.set(frozen.port, channel);
      this.#peerByChannel.set(channel, frozen);
      // The binding installed a permission too, but that one lasts 5 minutes, the channel 10.
      this.#permitted.add(frozen.address);
      this.#keepPermissions();
      this.#keepChannel(channel, frozen);
      return channel;
    }).finally(() => this.#binding.delete(key));
    this.#binding.set(key, promise);
    return promise;
  }

  async #bind(channel: number, peer: TransportAddress, signal?: AbortSignal): Promise<void> {
    const response = await this.#authenticated(Method.ChannelBind, (id) => [
      { type: AttrType.ChannelNumber, value: channelNumber.encode(channel) },
      { type: AttrType.XorPeerAddress, value: xorPeerAddress.encode(peer, id) },
    ], signal);
    if (response.messageClass === MessageClass.ErrorResponse) {
      throw turnErrorFrom(Method.ChannelBind, response, ` 0x${channel.toString(16)} to ${formatAddress(peer)}`);
    }
  }

  #keepChannel(channel: number, peer: TransportAddress): void {
    if (this.#closed) return;
    const schedule = new RefreshSchedule({
      clock: this.#clock,
      // Re-binding the same channel to the same peer refreshes it. @see RFC 8656 §12.2
      run: async () => {
        await this.#bind(channel, peer);
        return CHANNEL_LIFETIME_S;
      },
      delayMs: () => CHANNEL_REFRESH_MS,
      isFatal: refusedByServer,
      onError: (error, final) => {
        this.emit('refreshError', error, 'channel', final);
        if (final) this.#forgetChannel(channel, peer);
      },
    });
    this.#channelRefresh.set(channel, schedule);
    schedule.restart(CHANNEL_LIFETIME_S);
  }

  /** A channel that could not be refreshed is dropped: data goes by Send indication again. */
  #forgetChannel(channel: number, peer: TransportAddress): void {
    this.#channelRefresh.get(channel)?.stop();
    this.#channelRefresh.delete(channel);
    this.#peerByChannel.delete(channel);
    const ports = this.#channelByPeer.get(peer.address);
    ports?.delete(peer.port);
    if (ports?.size === 0) this.#channelByPeer.delete(peer.address);
  }

  /** The channel bound to `peer`, if any. */
  channelOf(peer: TransportAddress): number | undefined {
    return this.#channelByPeer.get(peer.address)?.get(peer.port);
  }

  /**
   * Send `data` to `peer` through the relay: as ChannelData when a channel is bound (one buffer,
   * padded to 4 bytes over TCP/TLS), else in a Send indication. Best effort, like UDP: nothing
   * says whether it arrived, and the server drops it without a permission for the peer's IP.
   * Dropped silently once the client is closed.
   * @throws UsageError before `allocate()`, or for more than 65535 bytes
   * @see RFC 8656 §11.1, §12.4, §12.5
   */
  /**
   * The channel bound to `peer`, for callers that frame ChannelData themselves (a relay path
   * writing the header into room it left before each frame); undefined without one.
   */
  channelFor(peer: TransportAddress): number | undefined {
    return this.#channelByPeer.get(peer.address)?.get(peer.port);
  }

  /**
   * Sends whole ChannelData messages (header written by the caller, `channelFor`) as they are,
   * in one system call where the UDP transport batches. Over TCP/TLS each is sent in turn, so
   * the caller pads them (RFC 8656 §12.5). Dropped once the client is closed.
   */
  sendChannelData(messages: readonly Uint8Array[]): void {
    if (this.#closed) return;
    const transport = this.transport;
    if (transport.kind === 'udp' && (transport as UdpTurnTransport).sendBatch && messages.length > 1) (transport as UdpTurnTransport).sendBatch!(messages);
    else for (const message of messages) transport.send(message);
  }

  send(peer: TransportAddress, data: Uint8Array): void {
    if (this.#closed) return;
    if (!this.#allocation) throw new UsageError('TURN send: no allocation; call allocate() first');
    if (data.length > 0xffff) throw new UsageError(`TURN send: ${data.length} bytes, at most 65535 fit in one message`);
    const channel = this.#channelByPeer.get(peer.address)?.get(peer.port);
    if (channel !== undefined) {
      this.transport.send(encodeChannelData(channel, data, this.transport.kind !== 'udp'));
      return;
    }
    const transactionId = newTransactionId();
    this.transport.send(encodeMessage({
      method: Method.Send,
      messageClass: MessageClass.Indication,
      transactionId,
      attributes: [
        { type: AttrType.XorPeerAddress, value: xorPeerAddress.encode(peer, transactionId) },
        { type: AttrType.Data, value: data },
      ],
    }));
  }

  /**
   * Free the allocation (Refresh with LIFETIME 0, best effort, a few seconds at most), stop every
   * timer, fail outstanding requests and close the transport. Idempotent: every call returns the
   * same promise, which never rejects.
   * @see RFC 8656 §8
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#stopRefreshing();
      if (this.#allocation && !this.#closed) {
        try {
          await this.#refresh(0, true);
        } catch (error) {
          debug('closing: Refresh(0) failed: %s', (error as Error).message);
        }
      }
      this.#shutdown(undefined);
    })();
    return this.#closing;
  }

  #stopRefreshing(): void {
    this.#allocationRefresh?.stop();
    this.#permissionRefresh?.stop();
    for (const schedule of this.#channelRefresh.values()) schedule.stop();
    this.#channelRefresh.clear();
  }

  /** Stop everything now, without telling the server. */
  #shutdown(error: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopRefreshing();
    const closed = new NatpunchError('ERR_STUN_CLOSED', 'TURN client closed with the request outstanding', { cause: error });
    for (const transaction of [...this.#pending.values()]) transaction.settle(closed);
    this.#allocation = undefined;
    this.transport.close();
    this.emit('close', error);
  }

  #checkOpen(): void {
    if (this.#closed || this.#closing) throw new NatpunchError('ERR_STUN_CLOSED', 'TURN client is closed');
  }

  /** Take REALM and NONCE from a 401 or 438 and derive the long-term key. @see RFC 8489 §9.2.2, §9.2.5 */
  #takeChallenge(response: StunMessage, user: string, password: string): void {
    const realmValue = getAttribute(response, AttrType.Realm);
    const nonceValue = getAttribute(response, AttrType.Nonce);
    if (!realmValue || !nonceValue) {
      throw new TurnError(StunErrorCode.Unauthenticated, errorOf(response).reason, 'TURN Allocate: the 401 challenge lacks REALM or NONCE, so no credentials can be sent');
    }
    let realmText: string;
    let nonceText: string;
    try {
      realmText = realm.decode(realmValue);
      nonceText = nonce.decode(nonceValue);
    } catch (error) {
      throw new TurnError(StunErrorCode.Unauthenticated, errorOf(response).reason, `TURN Allocate: unusable challenge: ${(error as Error).message}`, { cause: error });
    }
    const key = this.#credentials?.realm === realmText ? this.#credentials.key : longTermKey(user, realmText, password);
    this.#credentials = { username: user, password, realm: realmText, nonce: nonceText, key };
  }

  /**
   * One request with USERNAME, REALM, NONCE and MESSAGE-INTEGRITY, retried with the new nonce
   * after 438 (Stale Nonce). Resolves with the success or (other) error response.
   * @see RFC 8489 §9.2.4, §9.2.5
   */
  async #authenticated(method: number, attributes: Attribute[] | ((transactionId: Uint8Array) => Attribute[]), signal?: AbortSignal, closing = false): Promise<StunMessage> {
    for (let attempt = 0; ; attempt++) {
      const credentials = this.#credentials;
      if (!credentials) throw new UsageError(`TURN ${methodName(method)}: no credentials; call allocate() first`);
      const build = (id: Uint8Array): Attribute[] => [
        ...(typeof attributes === 'function' ? attributes(id) : attributes),
        { type: AttrType.Username, value: usernameCodec.encode(credentials.username) },
        { type: AttrType.Realm, value: realm.encode(credentials.realm) },
        { type: AttrType.Nonce, value: nonce.encode(credentials.nonce) },
      ];
      const response = await this.#transact(method, build, credentials.key, signal, closing);
      if (response.messageClass !== MessageClass.ErrorResponse || errorOf(response).status !== StunErrorCode.StaleNonce) return response;
      if (attempt >= MAX_STALE_NONCE_RETRIES) return response;
      this.#takeChallenge(response, credentials.username, credentials.password);
    }
  }

  /**
   * One transaction: over UDP retransmitted on the RFC 8489 §6.2.1 schedule, over TCP/TLS sent
   * once and given one timeout (§6.2.2). Resolves with the success or error response.
   */
  #transact(method: number, attributes: Attribute[] | ((transactionId: Uint8Array) => Attribute[]), key: Uint8Array | undefined, signal?: AbortSignal, closing = false): Promise<StunMessage> {
    if (this.#closed) return Promise.reject(new NatpunchError('ERR_STUN_CLOSED', 'TURN client is closed'));
    if (signal?.aborted) return Promise.reject(new AbortedError(`TURN ${methodName(method)} aborted`, { cause: signal.reason }));
    const transactionId = newTransactionId();
    const id = Buffer.from(transactionId).toString('hex');
    const bytes = encodeMessage(
      { method, messageClass: MessageClass.Request, transactionId, attributes: typeof attributes === 'function' ? attributes(transactionId) : attributes },
      key ? { integrity: { key } } : undefined,
    );
    const clock = this.#clock;
    const stream = this.transport.kind !== 'udp';
    const schedule = stream
      ? { sends: [0], deadline: closing ? Math.min(CLOSE_STREAM_TIMEOUT, this.#streamTimeoutMs) : this.#streamTimeoutMs }
      : retransmissionSchedule({ ...this.#retransmission, ...(closing ? CLOSE_RETRANSMISSION : {}) });
    return new Promise((resolve, reject) => {
      const timers: unknown[] = [];
      const onAbort = (): void => transaction.settle(new AbortedError(`TURN ${methodName(method)} aborted`, { cause: signal?.reason }));
      const transaction: Transaction = {
        method,
        key,
        settle: (outcome) => {
          if (this.#pending.get(id) !== transaction) return;
          this.#pending.delete(id);
          for (const timer of timers) clock.clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          if (outcome instanceof Error) reject(outcome);
          else resolve(outcome);
        },
      };
      this.#pending.set(id, transaction);
      signal?.addEventListener('abort', onAbort, { once: true });
      for (const at of schedule.sends) {
        if (at === 0) this.transport.send(bytes);
        else timers.push(clock.setTimeout(() => this.transport.send(bytes), at));
      }
      timers.push(clock.setTimeout(() => transaction.settle(new TransactionTimeoutError(
        `TURN ${methodName(method)}: no response from the server after ${schedule.sends.length} transmission${schedule.sends.length > 1 ? 's' : ''} in ${schedule.deadline} ms`)), schedule.deadline));
    });
  }

  /** Everything the transport delivers: responses, Data indications, ChannelData. Never throws on bad input. */
  #receive(bytes: Uint8Array): void {
    if (this.#closed) return;
    if (isChannelData(bytes)) {
      this.#receiveChannelData(bytes);
      return;
    }
    if (!isStunMessage(bytes)) return;
    let message: StunMessage;
    try {
      message = decodeMessage(bytes);
    } catch {
      return; // RFC 8489 §6.3: malformed messages are discarded silently.
    }
    if (message.messageClass === MessageClass.Indication) {
      if (message.method === Method.Data) this.#receiveDataIndication(message);
      return;
    }
    if (message.messageClass === MessageClass.Request) return;
    const transaction = this.#pending.get(Buffer.from(message.transactionId).toString('hex'));
    if (!transaction || transaction.method !== message.method) return;
    const verified = this.#verify(message, transaction.key);
    if (verified) transaction.settle(verified);
  }

  /**
   * The response as the client may read it, or undefined to drop it: signed with `key` when the
   * request was (only attributes the HMAC covers are kept), except the 401 / 438 challenges.
   * @see RFC 8489 §9.2.5
   */
  #verify(message: StunMessage, key: Uint8Array | undefined): StunMessage | undefined {
    if (!key) return message;
    if (message.messageClass === MessageClass.ErrorResponse) {
      const { status } = errorOf(message);
      if (status === StunErrorCode.Unauthenticated || status === StunErrorCode.StaleNonce) return message;
    }
    const check = inspectIntegrity(message, key);
    if (!check.verdict) {
      debug('dropped a %s %s: %s', methodName(message.method), message.messageClass === MessageClass.ErrorResponse ? 'error response' : 'response', check.detail);
      return undefined;
    }
    return { ...message, attributes: message.attributes.slice(0, check.coveredAttributes) };
  }

  #readAllocation(response: StunMessage): TurnAllocation {
    try {
      const relayedValue = getAttribute(response, AttrType.XorRelayedAddress);
      const mappedValue = getAttribute(response, AttrType.XorMappedAddress);
      const lifetimeValue = getAttribute(response, AttrType.Lifetime);
      if (!relayedValue || !mappedValue || !lifetimeValue) {
        throw new StunDecodeError(`the success response lacks ${[!relayedValue && 'XOR-RELAYED-ADDRESS', !mappedValue && 'XOR-MAPPED-ADDRESS', !lifetimeValue && 'LIFETIME'].filter(Boolean).join(', ')}`);
      }
      return {
        relayed: Object.freeze(xorRelayedAddress.decode(relayedValue, response.transactionId)),
        mapped: Object.freeze(xorMappedAddress.decode(mappedValue, response.transactionId)),
        lifetime: lifetime.decode(lifetimeValue),
      };
    } catch (error) {
      throw new TurnError(0, 'malformed response', `TURN Allocate: ${(error as Error).message}`, { cause: error });
    }
  }

  /** @see RFC 8656 §11.4 (no integrity on indications: the relay's permissions are the check) */
  #receiveDataIndication(message: StunMessage): void {
    const peerValue = getAttribute(message, AttrType.XorPeerAddress);
    const data = getAttribute(message, AttrType.Data);
    if (!peerValue || !data) return; // §11.4: discard without XOR-PEER-ADDRESS or DATA.
    let peer: TransportAddress;
    try {
      peer = xorPeerAddress.decode(peerValue, message.transactionId);
    } catch {
      return;
    }
    this.emit('data', peer, data);
  }

  /** @see RFC 8656 §12.6 */
  #receiveChannelData(bytes: Uint8Array): void {
    const channel = acceptedChannel(bytes);
    if (channel >= 0) this.#channelData(channel, bytes.subarray(CHANNEL_DATA_HEADER, CHANNEL_DATA_HEADER + channelDataLength(bytes)));
  }

  /** Per relayed datagram: no decoded object, no copy; data on a channel this client did not bind is dropped (§12.6). */
  #channelData(channel: number, data: Uint8Array): void {
    if (this.#closed) return;
    const peer = this.#peerByChannel.get(channel);
    if (peer) this.emit('data', peer, data);
  }
}
