/**
 * TURN server (RFC 8656): allocations of relayed UDP transport addresses for authenticated
 * clients, permissions and channels, and the data plane between them. It shares the STUN
 * listener's ports (TURN is STUN methods on the same 5-tuples): src/stun/server.ts hands it every
 * request that is not a Binding and every ChannelData message, with a `TurnClientSide` saying
 * where it came from.
 *
 * Each method's handler follows the RFC's numbered steps, one small function per step.
 * @see RFC 8656 §7 (Allocate), §7.3 (Refresh), §9 (CreatePermission), §10 (Send/Data), §11-12 (channels)
 */

import dgram from 'node:dgram';
import { once } from 'node:events';
import { debuglog } from 'node:util';
import {
  type Attribute, type StunMessage, type TransportAddress, AttrType, Method, MessageClass, StunErrorCode, addressFamily,
  channelNumber, encodeMessage, errorCode, getAttribute, isComprehensionRequired, lifetime as lifetimeCodec,
  requestedTransport, TRANSPORT_UDP, unknownAttributes, xorMappedAddress, xorPeerAddress, xorRelayedAddress,
  MIN_CHANNEL, MAX_CHANNEL_RFC5766, software as softwareCodec, evenPort,
} from '../wire/index.js';
import { TokenBucket } from '../token-bucket.js';
import { Allocation, type ChannelBinding } from './allocation.js';
import { LongTermAuth } from './auth.js';
import { CHANNEL_DATA_HEADER, acceptedChannel, channelDataLength } from './channel-data.js';
import { receiveDatagrams, type ReceivedBatch } from '../punch/udp-receive.js';
import { RelayFastPath } from './fast-path.js';
import { fiveTupleKey, type TurnClientSide } from './five-tuple.js';

const debug = debuglog('natpunch:turn');

/** Allocation lifetimes: 10 minutes by default, at most an hour. @see RFC 8656 §7.2 step 9 */
export const DEFAULT_LIFETIME_S = 600;
export const MAX_LIFETIME_S = 3600;

/** Which peers a relay may reach (src/turn/peer-policy.ts). */

/** SO_RCVBUF / SO_SNDBUF of each relayed socket (the kernel caps it at net.core.rmem_max / wmem_max). */
const RELAY_SOCKET_BUFFER = 4 << 20;
export interface PeerPolicy {
  check(ip: string): { ok: true } | { ok: false; reason: string };
}

export interface TurnServerOptions {
  realm?: string;
  /** Static long-term users (`--turn-user USER:PASSWORD`). */
  users?: ReadonlyMap<string, string>;
  /** REST shared secret (`--turn-secret`). */
  secret?: string;
  /** The IP relayed sockets bind to (and that XOR-RELAYED-ADDRESS reports). */
  relayAddress: string;
  policy: PeerPolicy;
  /** Allocations per username (default 10) and in all (default 2000): over either → 486. */
  userQuota?: number;
  totalQuota?: number;
  /** Bytes per second each allocation may relay, both directions together; 0 = unlimited (default). */
  bandwidth?: number;
  software?: string;
  /** Unix ms (default Date.now): lifetimes, permissions, nonces. */
  now?: () => number;
  /** Read and send relayed datagrams in batches through native/udp-batch where it is built (default true; decision 009). */
  native?: boolean;
  /** Makes relayed sockets (default dgram.createSocket). */
  createUdpSocket?: (options: dgram.SocketOptions) => dgram.Socket;
}

export interface TurnServerStats {
  allocations: number;
  allocationsCreated: number;
  requests: number;
  errors: Record<number, number>;
  bytesRelayed: number;
  /** bytesRelayed in each direction: from clients toward their peers, and from peers to clients. */
  bytesToPeers: number;
  bytesToClients: number;
  packetsRelayed: number;
  packetsDropped: number;
  /** ChannelData datagrams the native fast path passed from one client to another (each is 2 of packetsRelayed: in and out). */
  fastPathDatagrams: number;
  /** Flows the fast path forwards now (fast-path.ts). */
  fastPathRules: number;
}

type Reply = { attributes: Attribute[] } | { code: number; reason: string; attributes?: Attribute[] };

const understood = new Set<number>(Object.values(AttrType).filter((v): v is number => typeof v === 'number'));
/** Comprehension-required attributes this server recognises but does not implement: treated as unknown (420). @see RFC 8656 §7.2 steps 3, 5 */
const unsupported = new Set<number>([AttrType.DontFragment]);

/** How long a port reserved by EVEN-PORT's R bit waits for the Allocate that claims it. @see RFC 8656 §7.2 (30 s) */
export const RESERVATION_LIFETIME_MS = 30_000;

export class TurnServer {
  readonly #stats: TurnServerStats = { allocations: 0, allocationsCreated: 0, requests: 0, errors: {}, bytesRelayed: 0, bytesToPeers: 0, bytesToClients: 0, packetsRelayed: 0, packetsDropped: 0, fastPathDatagrams: 0, fastPathRules: 0 };
  readonly #options: TurnServerOptions;
  readonly #auth: LongTermAuth;
  readonly #now: () => number;
  readonly #allocations = new Map<string, Allocation>();
  readonly #perUser = new Map<string, number>();
  /** 5-tuples whose Allocate is binding its relayed socket: a retransmission waits for that answer. */
  readonly #pending = new Set<string>();
  /** Pending 5-tuples whose TCP/TLS connection closed before the allocation was made. */
  readonly #gone = new Set<string>();
  /** Live allocations by relayed port (all share the relay IP). */
  readonly #byRelayedPort = new Map<number, Allocation>();
  readonly #reservations = new Map<string, { socket: dgram.Socket; timer: NodeJS.Timeout }>();
  readonly #sweeper: NodeJS.Timeout;
  readonly #relayFamily: 4 | 6;
  /**
   * Relaying between two of our own UDP clients without JavaScript per datagram (fast-path.ts).
   * Not with an injected clock: the addon's rules expire by the real one.
   */
  readonly #fast: RelayFastPath | undefined;
  #closed = false;

  constructor(options: TurnServerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#auth = new LongTermAuth({ realm: options.realm ?? 'natpunch', users: options.users, secret: options.secret, now: this.#now });
    this.#relayFamily = options.relayAddress.includes(':') ? 6 : 4;
    this.#fast = options.now === undefined && options.native !== false ? new RelayFastPath((route, counts) => this.#foldForwarded(route, counts)) : undefined;
    this.#sweeper = setInterval(() => this.#sweep(), 1000);
    this.#sweeper.unref();
  }

  /** Counters since the server started (what the fast path relayed included). */
  get stats(): TurnServerStats {
    this.#fast?.sync();
    this.#stats.fastPathRules = this.#fast?.size ?? 0;
    return this.#stats;
  }

  /** The IP relayed transport addresses are on. */
  get relayAddress(): string {
    return this.#options.relayAddress;
  }

  get realm(): string {
    return this.#auth.realm;
  }

  /** Live allocations (for tests and metrics). */
  get allocations(): ReadonlyMap<string, Allocation> {
    return this.#allocations;
  }

  /**
   * A STUN message that is not a Binding request. Returns false when it is not TURN's either
   * (the STUN listener then drops it).
   */
  handleMessage(message: StunMessage, client: TurnClientSide): boolean {
    if (this.#closed) return false;
    if (message.messageClass === MessageClass.Indication) {
      if (message.method !== Method.Send) return false;
      this.#onSend(message, client);
      return true;
    }
    if (message.messageClass !== MessageClass.Request) return false;
    switch (message.method) {
      case Method.Allocate:
      case Method.Refresh:
      case Method.CreatePermission:
      case Method.ChannelBind:
        break;
      default:
        return false;
    }
    this.#stats.requests++;
    this.#onRequest(message, client);
    return true;
  }

  /** A ChannelData message from a client: relayed to the bound peer, or dropped. @see RFC 8656 §12.6 */
  handleChannelData(bytes: Uint8Array, client: TurnClientSide, start = 0, end = bytes.length): void {
    // No object per message: bytes[start, end) is a received batch's datagram (valid during this
    // call), and the data is sent from it as a range, copied into the relay socket's send batch.
    const allocation = this.#allocations.get(fiveTupleKey(client));
    const channel = acceptedChannel(bytes, start, end);
    if (!allocation || channel < 0) return void this.#stats.packetsDropped++;
    const length = channelDataLength(bytes, start);
    const binding = allocation.channel(channel, this.#now());
    if (!binding || !this.#reachable(binding.peer) || !this.#spend(allocation, length)) return void this.#stats.packetsDropped++;
    allocation.bytesFromClient += length;
    this.#count(length);
    this.#stats.bytesToPeers += length;
    const data = start + CHANNEL_DATA_HEADER;
    const local = binding.peer.address === this.#options.relayAddress ? this.#byRelayedPort.get(binding.peer.port) : undefined;
    if (local) {
      // Another allocation of this server (two peers meeting on one relay, the usual case): hand
      // the data to it as if it had come through the kernel from our relayed address, saving a
      // sendmmsg, a loopback delivery and a recvmmsg per datagram. Its permission and channel
      // are checked the same way; the incoming header's 4 bytes take the outgoing header.
      const back = this.#toClient(local, bytes, data, length, CHANNEL_DATA_HEADER, this.#options.relayAddress!, allocation.relayed.port, allocation.relayed.family);
      if (back !== undefined && this.#fast !== undefined) {
        // Everything this decision rested on, and until when it holds (fast-path.ts).
        const validUntil = Math.min(allocation.expiresAt, binding.expiresAt, allocation.permissions.get(binding.peer.address) ?? 0,
          local.expiresAt, back.expiresAt, local.permissions.get(this.#options.relayAddress!) ?? 0);
        this.#fast.offer(allocation, channel, local, back.channel, validUntil, this.#now());
      }
      return;
    }
    allocation.sender.sendRange(bytes, data, data + length, binding.peer.port, binding.peer.address);
  }

  /** The client's TCP or TLS connection closed: its allocation goes with it. @see RFC 8656 §3.1 */
  clientClosed(client: TurnClientSide): void {
    const key = fiveTupleKey(client);
    if (this.#pending.has(key)) this.#gone.add(key);
    const allocation = this.#allocations.get(key);
    if (allocation) this.#delete(allocation);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    for (const allocation of [...this.#allocations.values()]) this.#delete(allocation);
    this.#fast?.close();
    for (const { socket, timer } of this.#reservations.values()) {
      clearTimeout(timer);
      socket.close();
    }
    this.#reservations.clear();
  }

  // --- requests -----------------------------------------------------------------------------

  #onRequest(request: StunMessage, client: TurnClientSide): void {
    const key = fiveTupleKey(client);
    const existing = this.#allocations.get(key);
    // RFC 8656 §7.2: a retransmitted Allocate that already succeeded gets the same response again.
    if (request.method === Method.Allocate && existing?.allocateTransaction?.id === hex(request.transactionId)) {
      client.send(existing.allocateTransaction.response);
      return;
    }
    const auth = this.#auth.authenticate(request, client.remote.address);
    if (!auth.ok) {
      this.#answer(request, client, { code: auth.code, reason: auth.reason, attributes: auth.attributes });
      return;
    }
    const sign = { key: auth.key, algorithm: auth.algorithm };
    const unknown = unknownComprehensionRequired(request);
    if (unknown.length > 0) {
      this.#answer(request, client, { code: StunErrorCode.UnknownAttribute, reason: 'Unknown Attribute', attributes: [{ type: AttrType.UnknownAttributes, value: unknownAttributes.encode(unknown) }] }, sign);
      return;
    }
    // RFC 8656 §5: every request on an allocation must use the username that created it.
    if (existing && existing.username !== auth.username) {
      this.#answer(request, client, { code: StunErrorCode.WrongCredentials, reason: 'Wrong Credentials: the allocation belongs to another username' }, sign);
      return;
    }
    if (request.method === Method.Allocate) {
      if (this.#pending.has(key)) return;
      this.#pending.add(key);
      void this.#allocate(request, client, key, existing, auth.username, auth.key).then((reply) => {
        this.#pending.delete(key);
        const bytes = this.#answer(request, client, reply, sign);
        const created = this.#allocations.get(key);
        if (created && !('code' in reply)) created.allocateTransaction = { id: hex(request.transactionId), response: bytes };
      });
      return;
    }
    if (!existing) {
      this.#answer(request, client, { code: StunErrorCode.AllocationMismatch, reason: 'Allocation Mismatch: no allocation on this 5-tuple' }, sign);
      return;
    }
    const reply = request.method === Method.Refresh ? this.#refresh(request, existing)
      : request.method === Method.CreatePermission ? this.#createPermission(request, existing)
        : this.#channelBind(request, existing);
    this.#answer(request, client, reply, sign);
  }

  /** @see RFC 8656 §7.2 */
  async #allocate(request: StunMessage, client: TurnClientSide, key: string, existing: Allocation | undefined, username: string, integrityKey: Uint8Array): Promise<Reply> {
    // 2. An allocation already on this 5-tuple → 437.
    if (existing) return { code: StunErrorCode.AllocationMismatch, reason: 'Allocation Mismatch: this 5-tuple already has an allocation' };
    // 3. REQUESTED-TRANSPORT missing or malformed → 400; not UDP → 442.
    const transport = decodeOr(request, AttrType.RequestedTransport, requestedTransport.decode);
    if (transport === undefined || transport === null) return { code: StunErrorCode.BadRequest, reason: 'Bad Request: REQUESTED-TRANSPORT missing or malformed' };
    if (transport !== TRANSPORT_UDP) return { code: StunErrorCode.UnsupportedTransportProtocol, reason: 'Unsupported Transport Protocol: this relay allocates UDP only' };
    // 6-7. Address families: REQUESTED-ADDRESS-FAMILY must be one this relay has (440); with
    // ADDITIONAL-ADDRESS-FAMILY too it is a 400.
    const requested = decodeOr(request, AttrType.RequestedAddressFamily, addressFamily.decode);
    const additional = decodeOr(request, AttrType.AdditionalAddressFamily, addressFamily.decode);
    if (requested === null || additional === null) return { code: StunErrorCode.BadRequest, reason: 'Bad Request: malformed address family attribute' };
    if (getAttribute(request, AttrType.RequestedAddressFamily) && getAttribute(request, AttrType.AdditionalAddressFamily)) {
      return { code: StunErrorCode.BadRequest, reason: 'Bad Request: REQUESTED-ADDRESS-FAMILY with ADDITIONAL-ADDRESS-FAMILY' };
    }
    if ((requested ?? 4) !== this.#relayFamily && getAttribute(request, AttrType.RequestedAddressFamily)) {
      return { code: StunErrorCode.AddressFamilyNotSupported, reason: `Address Family not Supported: this relay has IPv${this.#relayFamily} only` };
    }
    // 8. Quotas → 486.
    const userCount = this.#perUser.get(username) ?? 0;
    if (userCount >= (this.#options.userQuota ?? 10)) return { code: StunErrorCode.AllocationQuotaReached, reason: `Allocation Quota Reached: ${userCount} allocations for this username` };
    if (this.#allocations.size >= (this.#options.totalQuota ?? 2000)) return { code: StunErrorCode.AllocationQuotaReached, reason: 'Allocation Quota Reached: the server holds its maximum of allocations' };
    // 4-5. EVEN-PORT (with R: also reserve the next port, handed out by a RESERVATION-TOKEN) and
    // RESERVATION-TOKEN are exclusive (400); a token that names no reservation → 508.
    const even = decodeOr(request, AttrType.EvenPort, evenPort.decode);
    const tokenValue = getAttribute(request, AttrType.ReservationToken);
    if (even === null || (even && tokenValue)) return { code: StunErrorCode.BadRequest, reason: 'Bad Request: EVEN-PORT malformed or with RESERVATION-TOKEN' };
    let reserved: dgram.Socket | undefined;
    if (tokenValue) {
      reserved = this.#claim(tokenValue);
      if (!reserved) return { code: StunErrorCode.InsufficientCapacity, reason: 'Insufficient Capacity: no reservation for this RESERVATION-TOKEN' };
    }
    // The quota slot is taken before the await, so concurrent Allocates of one user cannot overshoot it.
    this.#perUser.set(username, userCount + 1);
    const pair = reserved ? { socket: reserved } : await this.#bindRelay(even?.reserve ? 'reserve' : even ? 'even' : 'any');
    const socket = pair?.socket;
    if (!socket || this.#closed || this.#gone.delete(key)) {
      socket?.close();
      pair?.next?.close();
      this.#release(username);
      return { code: StunErrorCode.InsufficientCapacity, reason: 'Insufficient Capacity: no relayed port available' };
    }
    const token = pair.next ? this.#reserve(pair.next) : undefined;
    const bound = socket.address();
    const lifetimeS = this.#lifetime(request);
    const rate = this.#options.bandwidth ?? 0;
    const allocation = new Allocation({
      key, client, username, integrityKey, socket,
      relayed: { family: this.#relayFamily, address: bound.address, port: bound.port },
      expiresAt: this.#now() + lifetimeS * 1000,
      ...(rate > 0 ? { bandwidth: new TokenBucket(rate, Math.max(rate / 4, 65_536)) } : {}),
      native: this.#options.native,
    });
    // Batched reads (decision 009), each datagram with room for the ChannelData header in front.
    receiveDatagrams(socket, (batch) => { for (let i = 0; i < batch.count; i++) this.#fromPeer(allocation, batch, i); }, { headroom: CHANNEL_DATA_HEADER, native: this.#options.native });
    socket.on('error', (error) => debug('relay %s: %s', allocation.relayed.port, error.message));
    this.#allocations.set(key, allocation);
    this.#byRelayedPort.set(allocation.relayed.port, allocation);
    this.#stats.allocations = this.#allocations.size;
    this.#stats.allocationsCreated++;
    const attributes: Attribute[] = [
      { type: AttrType.XorRelayedAddress, value: xorRelayedAddress.encode(allocation.relayed, request.transactionId) },
      { type: AttrType.Lifetime, value: lifetimeCodec.encode(lifetimeS) },
      { type: AttrType.XorMappedAddress, value: xorMappedAddress.encode(client.remote, request.transactionId) },
    ];
    if (token) attributes.push({ type: AttrType.ReservationToken, value: token });
    // RFC 8656 §7.2 step 7: an ADDITIONAL-ADDRESS-FAMILY this relay cannot give is reported, not fatal.
    if (additional !== undefined && additional !== this.#relayFamily) {
      attributes.push({ type: AttrType.AddressErrorCode, value: addressErrorCode(additional, StunErrorCode.AddressFamilyNotSupported, 'Address Family not Supported') });
    }
    return { attributes };
  }

  /**
   * A relayed socket on any port, an even one, or an even one with the next (odd) port bound too
   * for a reservation. Ephemeral ports come in no order, so even ports are found by retrying.
   */
  async #bindRelay(want: 'any' | 'even' | 'reserve'): Promise<{ socket: dgram.Socket; next?: dgram.Socket } | undefined> {
    for (let attempt = 0; attempt < (want === 'any' ? 1 : 32); attempt++) {
      const socket = await this.#bindPort(0);
      if (!socket) return undefined;
      const port = socket.address().port;
      if (want === 'any') return { socket };
      if (port % 2 === 0 && want === 'even') return { socket };
      if (port % 2 === 0 && port < 0xffff) {
        const next = await this.#bindPort(port + 1);
        if (next) return { socket, next };
      }
      socket.close();
    }
    return undefined;
  }

  async #bindPort(port: number): Promise<dgram.Socket | undefined> {
    // Buffers as large as the client-facing socket's: a relayed stream arrives in bursts, and a
    // datagram the default 208 KiB cannot hold is a loss the stream's congestion control pays for.
    const socket = (this.#options.createUdpSocket ?? dgram.createSocket)({ type: this.#relayFamily === 6 ? 'udp6' : 'udp4', recvBufferSize: RELAY_SOCKET_BUFFER, sendBufferSize: RELAY_SOCKET_BUFFER });
    try {
      socket.bind(port, this.#options.relayAddress);
      await once(socket, 'listening');
      return socket;
    } catch (error) {
      debug('relay bind %d: %s', port, (error as Error).message);
      socket.close();
      return undefined;
    }
  }

  /** Holds a reserved socket for RESERVATION_LIFETIME_MS; returns its 8-byte token. @see RFC 8656 §18.9 */
  #reserve(socket: dgram.Socket): Uint8Array {
    const token = crypto.getRandomValues(new Uint8Array(8));
    const id = hex(token);
    const timer = setTimeout(() => {
      this.#reservations.delete(id);
      socket.close();
    }, RESERVATION_LIFETIME_MS);
    timer.unref();
    this.#reservations.set(id, { socket, timer });
    return token;
  }

  #claim(token: Uint8Array): dgram.Socket | undefined {
    const id = hex(token);
    const reservation = this.#reservations.get(id);
    if (!reservation) return undefined;
    this.#reservations.delete(id);
    clearTimeout(reservation.timer);
    return reservation.socket;
  }

  /** The LIFETIME asked for, raised to the default and capped at the maximum. @see RFC 8656 §7.2 step 9 */
  #lifetime(request: StunMessage): number {
    const asked = decodeOr(request, AttrType.Lifetime, lifetimeCodec.decode);
    if (asked === undefined || asked === null) return DEFAULT_LIFETIME_S;
    return Math.min(Math.max(asked, DEFAULT_LIFETIME_S), MAX_LIFETIME_S);
  }

  /** @see RFC 8656 §7.3 (server side of §7.4) */
  #refresh(request: StunMessage, allocation: Allocation): Reply {
    const family = decodeOr(request, AttrType.RequestedAddressFamily, addressFamily.decode);
    if (family === null) return { code: StunErrorCode.BadRequest, reason: 'Bad Request: malformed REQUESTED-ADDRESS-FAMILY' };
    if (family !== undefined && family !== allocation.relayed.family) return { code: StunErrorCode.PeerAddressFamilyMismatch, reason: 'Peer Address Family Mismatch' };
    const asked = decodeOr(request, AttrType.Lifetime, lifetimeCodec.decode);
    if (asked === null) return { code: StunErrorCode.BadRequest, reason: 'Bad Request: malformed LIFETIME' };
    if (asked === 0) {
      this.#delete(allocation);
      return { attributes: [{ type: AttrType.Lifetime, value: lifetimeCodec.encode(0) }] };
    }
    // A Refresh may shorten below the default (unlike Allocate): the client knows when it is done.
    const seconds = Math.min(asked ?? DEFAULT_LIFETIME_S, MAX_LIFETIME_S);
    allocation.expiresAt = this.#now() + seconds * 1000;
    return { attributes: [{ type: AttrType.Lifetime, value: lifetimeCodec.encode(seconds) }] };
  }

  /** @see RFC 8656 §9.2 */
  #createPermission(request: StunMessage, allocation: Allocation): Reply {
    const peers: TransportAddress[] = [];
    for (const attribute of request.attributes) {
      if (attribute.type !== AttrType.XorPeerAddress) continue;
      let peer: TransportAddress;
      try {
        peer = xorPeerAddress.decode(attribute.value, request.transactionId);
      } catch (error) {
        return { code: StunErrorCode.BadRequest, reason: `Bad Request: ${(error as Error).message}` };
      }
      // A permission names an IP only (RFC 8656 §9.1: the port is ignored), so one for the relay IP is
      // granted when asked for; what it lets through is only the live relayed ports (#reachable).
      const refusal = this.#checkPeer(peer, allocation, peer.address === this.#options.relayAddress);
      if (refusal) return refusal;
      peers.push(peer);
    }
    if (peers.length === 0) return { code: StunErrorCode.BadRequest, reason: 'Bad Request: XOR-PEER-ADDRESS missing' };
    // All or nothing: permissions are installed only once every address passed. @see RFC 8656 §9.2
    const now = this.#now();
    for (const peer of peers) allocation.permit(peer.address, now);
    return { attributes: [] };
  }

  /** @see RFC 8656 §11.2 */
  #channelBind(request: StunMessage, allocation: Allocation): Reply {
    const channel = decodeOr(request, AttrType.ChannelNumber, channelNumber.decode);
    const peerValue = getAttribute(request, AttrType.XorPeerAddress);
    if (channel === undefined || channel === null || !peerValue) return { code: StunErrorCode.BadRequest, reason: 'Bad Request: CHANNEL-NUMBER and XOR-PEER-ADDRESS are required' };
    if (channel < MIN_CHANNEL || channel > MAX_CHANNEL_RFC5766) return { code: StunErrorCode.BadRequest, reason: `Bad Request: channel 0x${channel.toString(16)} is outside 0x4000-0x7fff` };
    let peer: TransportAddress;
    try {
      peer = xorPeerAddress.decode(peerValue, request.transactionId);
    } catch (error) {
      return { code: StunErrorCode.BadRequest, reason: `Bad Request: ${(error as Error).message}` };
    }
    const refusal = this.#checkPeer(peer, allocation);
    if (refusal) return refusal;
    const conflict = allocation.bind(channel, peer, this.#now());
    if (conflict) return { code: StunErrorCode.BadRequest, reason: `Bad Request: ${conflict}` };
    return { attributes: [] };
  }

  /** A peer address this allocation may not reach: family mismatch (443) or the policy (403). */
  #checkPeer(peer: TransportAddress, allocation: Allocation, relayIp = false): Reply | undefined {
    if (peer.family !== allocation.relayed.family) return { code: StunErrorCode.PeerAddressFamilyMismatch, reason: 'Peer Address Family Mismatch' };
    if (relayIp && this.#byRelayedPort.size > 0) return undefined;
    // Another allocation of this server (two peers relaying to each other, each through its own
    // allocation): the server's own address, which the policy refuses, is fine for exactly the
    // relayed ports that are live — and only for them (see #reachable).
    if (this.#isOwnRelayed(peer)) return undefined;
    const verdict = this.#options.policy.check(peer.address);
    if (!verdict.ok) return { code: StunErrorCode.Forbidden, reason: `Forbidden: ${verdict.reason}` };
    return undefined;
  }

  // --- data ---------------------------------------------------------------------------------

  /** A Send indication: its DATA goes to XOR-PEER-ADDRESS if a permission covers it. @see RFC 8656 §10.2 */
  #onSend(indication: StunMessage, client: TurnClientSide): void {
    const allocation = this.#allocations.get(fiveTupleKey(client));
    const peerValue = getAttribute(indication, AttrType.XorPeerAddress);
    const data = getAttribute(indication, AttrType.Data);
    if (!allocation || !peerValue || !data) return void this.#stats.packetsDropped++;
    let peer: TransportAddress;
    try {
      peer = xorPeerAddress.decode(peerValue, indication.transactionId);
    } catch {
      return void this.#stats.packetsDropped++;
    }
    if (!allocation.hasPermission(peer.address, this.#now()) || !this.#reachable(peer) || !this.#spend(allocation, data.length)) return void this.#stats.packetsDropped++;
    allocation.bytesFromClient += data.length;
    this.#count(data.length);
    this.#stats.bytesToPeers += data.length;
    allocation.sender.send(data, peer.port, peer.address);
  }

  /** A datagram from a peer to the relayed address: to the client as ChannelData or a Data indication. @see RFC 8656 §10.3, §12.6 */
  #fromPeer(allocation: Allocation, batch: ReceivedBatch, i: number): void {
    this.#toClient(allocation, batch.slab, batch.offset(i), batch.length(i), batch.headroom, batch.address(i), batch.port(i), batch.family(i));
  }

  /**
   * Data from address:port for `allocation`'s client: bytes[offset, offset + length), with
   * `headroom` writable bytes before it (valid during this call only).
   */
  #toClient(allocation: Allocation, bytes: Uint8Array, offset: number, length: number, headroom: number, address: string, port: number, family: 4 | 6): ChannelBinding | undefined {
    const now = this.#now();
    if (!allocation.hasPermission(address, now) || !this.#spend(allocation, length)) {
      allocation.dropped++;
      return void this.#stats.packetsDropped++;
    }
    allocation.bytesToClient += length;
    this.#count(length);
    this.#stats.bytesToClients += length;
    const binding = allocation.channelForAddress(address, port, now);
    const client = allocation.client;
    if (binding) {
      if (client.sendRange !== undefined && headroom >= CHANNEL_DATA_HEADER) {
        // UDP, no allocation: the header goes into the headroom in front of the data and the
        // message is copied into the client socket's send batch (RFC 8656 §12.5: no padding over UDP).
        putHeader(bytes, offset - CHANNEL_DATA_HEADER, binding.channel, length);
        client.sendRange(bytes, offset - CHANNEL_DATA_HEADER, offset + length);
        return binding;
      }
      // TCP/TLS (padded to 4, §12.5), or no headroom: a message of its own, since a stream write
      // may keep its bytes after this returns.
      const pad = client.transport === 'udp' ? 0 : (4 - (length % 4)) % 4;
      const message = Buffer.alloc(CHANNEL_DATA_HEADER + length + pad);
      putHeader(message, 0, binding.channel, length);
      message.set(bytes.subarray(offset, offset + length), CHANNEL_DATA_HEADER);
      client.send(message);
      return undefined;
    }
    const transactionId = new Uint8Array(12);
    const peer: TransportAddress = { family, address, port };
    client.send(encodeMessage({
      method: Method.Data, messageClass: MessageClass.Indication, transactionId: crypto.getRandomValues(transactionId),
      attributes: [{ type: AttrType.XorPeerAddress, value: xorPeerAddress.encode(peer, transactionId) }, { type: AttrType.Data, value: bytes.subarray(offset, offset + length) }],
    }));
  }

  #isOwnRelayed(peer: TransportAddress): boolean {
    return peer.address === this.#options.relayAddress && this.#byRelayedPort.has(peer.port);
  }

  /**
   * A permission covers an IP, every port (RFC 8656 §3.4). A permission for this server's own
   * relay IP (installed to reach another allocation) must not open its other ports — a database
   * on localhost, the rendezvous — so Send to the relay IP goes only to live relayed ports.
   * (Channels are bound to one address and port, checked when bound.)
   */
  #reachable(peer: TransportAddress): boolean {
    return peer.address !== this.#options.relayAddress || this.#byRelayedPort.has(peer.port);
  }

  #spend(allocation: Allocation, bytes: number): boolean {
    return !allocation.bandwidth || allocation.bandwidth.take(bytes);
  }

  /** What a fast-path rule relayed, booked as the slow path books each datagram (handleChannelData, #toClient). */
  #foldForwarded(route: { from: Allocation; to: Allocation }, counts: { datagrams: number; bytes: number; dropped: number }): void {
    if (counts.datagrams === 0 && counts.dropped === 0) return;
    const stats = this.#stats;
    route.from.bytesFromClient += counts.bytes;
    route.to.bytesToClient += counts.bytes;
    route.to.dropped += counts.dropped;
    stats.bytesToPeers += counts.bytes;
    stats.bytesToClients += counts.bytes;
    stats.bytesRelayed += 2 * counts.bytes;
    stats.packetsRelayed += 2 * counts.datagrams;
    stats.fastPathDatagrams += counts.datagrams;
    stats.packetsDropped += counts.dropped;
  }

  #count(bytes: number): void {
    this.#stats.bytesRelayed += bytes;
    this.#stats.packetsRelayed++;
  }

  // --- bookkeeping --------------------------------------------------------------------------

  #answer(request: StunMessage, client: TurnClientSide, reply: Reply, sign?: { key: Uint8Array; algorithm: 'sha1' | 'sha256' }): Uint8Array {
    const failed = 'code' in reply;
    if (failed) this.#stats.errors[reply.code] = (this.#stats.errors[reply.code] ?? 0) + 1;
    const encode = (reason: string): Uint8Array => {
      const attributes: Attribute[] = failed ? [{ type: AttrType.ErrorCode, value: errorCode.encode({ code: reply.code, reason }) }, ...(reply.attributes ?? [])] : [...reply.attributes];
      // SOFTWARE only on authenticated answers: a 401 to a spoofed UDP source stays small.
      if (sign && this.#options.software) attributes.push({ type: AttrType.Software, value: softwareCodec.encode(this.#options.software) });
      return encodeMessage(
        { method: request.method, messageClass: failed ? MessageClass.ErrorResponse : MessageClass.SuccessResponse, transactionId: request.transactionId, attributes },
        { ...(sign ? { integrity: { key: sign.key, algorithm: sign.algorithm } } : {}), fingerprint: getAttribute(request, AttrType.Fingerprint) !== undefined },
      );
    };
    const reason = failed ? reply.reason.slice(0, 120) : '';
    let bytes: Uint8Array;
    if (failed && !sign && client.transport === 'udp') {
      // An unauthenticated UDP request may come from a spoofed source: the answer carries its
      // essential attributes (ERROR-CODE, and REALM + NONCE for a challenge) and the reason
      // phrase only as far as it keeps the answer no larger than the request (decision 001's
      // rule, applied to TURN: docs/decisions/008-relay.md).
      const bare = encode('');
      const room = Math.floor((request.raw.length - bare.length) / 4) * 4;
      bytes = room > 0 ? encode(reason.slice(0, room)) : bare;
    } else {
      bytes = encode(reason);
    }
    client.send(bytes);
    return bytes;
  }

  #delete(allocation: Allocation): void {
    if (this.#allocations.get(allocation.key) !== allocation) return;
    this.#fast?.drop(allocation);
    this.#allocations.delete(allocation.key);
    this.#byRelayedPort.delete(allocation.relayed.port);
    this.#release(allocation.username);
    this.#stats.allocations = this.#allocations.size;
    allocation.close();
  }

  #release(username: string): void {
    const count = (this.#perUser.get(username) ?? 1) - 1;
    if (count > 0) this.#perUser.set(username, count);
    else this.#perUser.delete(username);
  }

  #sweep(): void {
    const now = this.#now();
    for (const allocation of [...this.#allocations.values()]) {
      if (allocation.expiresAt <= now) this.#delete(allocation);
      else allocation.sweep(now);
    }
  }
}

/**
 * A ChannelData header for a binding this server made: unlike writeChannelDataHeader (which
 * holds senders to RFC 8656's 0x4000-0x4FFF), channels up to RFC 5766's 0x7FFF are bound here
 * for older clients (MAX_CHANNEL_RFC5766), and the length is a datagram's. @see RFC 8656 §12.4
 */
function putHeader(out: Uint8Array, at: number, channel: number, length: number): void {
  out[at] = channel >> 8;
  out[at + 1] = channel & 0xff;
  out[at + 2] = length >> 8;
  out[at + 3] = length & 0xff;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** The attribute decoded; undefined when absent, null when malformed. */
function decodeOr<T>(message: StunMessage, type: number, decode: (value: Uint8Array) => T): T | undefined | null {
  const value = getAttribute(message, type);
  if (!value) return undefined;
  try {
    return decode(value);
  } catch {
    return null;
  }
}

function unknownComprehensionRequired(request: StunMessage): number[] {
  return [...new Set(request.attributes.map((a) => a.type).filter((t) => isComprehensionRequired(t) && (!understood.has(t) || unsupported.has(t))))];
}

/** ADDRESS-ERROR-CODE: family byte, reserved, then ERROR-CODE's class/number/reason. @see RFC 8656 §18.12 */
function addressErrorCode(family: 4 | 6, code: number, reason: string): Uint8Array {
  const inner = errorCode.encode({ code, reason });
  const value = new Uint8Array(inner.length);
  value.set(inner);
  value[0] = family === 4 ? 0x01 : 0x02;
  return value;
}
