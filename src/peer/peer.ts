import dgram from 'node:dgram';
import type { Duplex } from 'node:stream';
import os from 'node:os';
import { once, EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { debuglog } from 'node:util';
import { NatpunchError } from '../errors.js';
import { type Identity, loadOrCreateIdentity, defaultKeyFile, normalizePeerId } from '../identity/index.js';
import { StunUdpClient } from '../stun/udp-client.js';
import { formatAddress, type TransportAddress } from '../wire/index.js';
import { UdpMux } from '../punch/udp-mux.js';
import { UdpCheckSession, type PunchResult } from '../punch/udp-checks.js';
import { candidateTypeOf } from '../punch/candidate.js';
import { tcpSimultaneousOpen } from '../punch/tcp-simultaneous-open.js';
import { RendezvousClient, type PunchInstruction } from '../rendezvous/client.js';
import { createStream } from '../transport/index.js';
import { UdpPath } from './udp-path.js';
import { SecureStream } from './secure-stream.js';
import { TcpMapping } from './tcp-mapping.js';

const debug = debuglog('natpunch:peer');

/** Interval of STUN keepalives toward the rendezvous server's STUN endpoint (see constructor). */
export const KEEPALIVE_MS = 15_000;

export type PathKind = 'direct-udp' | 'direct-tcp' | 'relay';

export interface PeerOptions {
  /** Rendezvous server, e.g. ws://198.51.100.10:8080/ */
  server: string;
  identity?: Identity;
  /** Key file used when no identity is given (default $NATPUNCH_HOME/key or ~/.natpunch/key). */
  keyFile?: string;
  /** Local address for the peer's UDP socket (default: all). */
  bindAddress?: string;
  /** Decide whether to accept a connection from this peer (default: accept all). */
  accept?: (peerId: string) => boolean | Promise<boolean>;
  /** STUN keepalive interval toward the rendezvous server's STUN endpoint, ms (default KEEPALIVE_MS; 0 disables). */
  keepaliveMs?: number;
  signal?: AbortSignal;
}

export interface ConnectOptions {
  signal?: AbortSignal;
  /** Force a technique: 'udp', or 'tcp' (TCP simultaneous open); 'auto' means udp for now, 'relay' is not available yet. */
  transport?: 'auto' | 'udp' | 'tcp' | 'relay';
}

/** An encrypted, authenticated byte stream to a peer, plus what carries it. */
export interface Connection extends SecureStream {
  readonly path: PathKind;
  readonly technique: string;
  readonly remote: string;
  /** Milliseconds from the start of connecting to the secure stream being ready. */
  readonly ms: number;
}

/**
 * A natpunch peer: one UDP socket (its NAT mapping is the peer's public identity on the
 * network), a registration at a rendezvous server, and connections to other peers by id.
 * Emits 'connection' (Connection) for incoming ones.
 */
export class Peer extends EventEmitter {
  readonly identity: Identity;
  readonly #socket: dgram.Socket;
  readonly #mux: UdpMux;
  readonly #stun: StunUdpClient;
  readonly #rendezvous: RendezvousClient;
  readonly #sessions = new Set<UdpCheckSession>();
  readonly #connections = new Set<Connection>();
  readonly #tcp: TcpMapping | undefined;
  readonly #bindAddress: string | undefined;
  /** Aborted by close(): stops TCP punches still retrying from L. */
  readonly #closing = new AbortController();
  #keepalive: NodeJS.Timeout | undefined;
  #closed = false;
  /** Gracefully closed UDP streams still answering retransmissions (stream.settle()). */
  readonly #settling = new Set<Promise<void>>();

  private constructor(
    identity: Identity, socket: dgram.Socket, mux: UdpMux, stun: StunUdpClient, rendezvous: RendezvousClient, keepaliveMs: number,
    tcp: TcpMapping | undefined, bindAddress: string | undefined,
  ) {
    super();
    this.#tcp = tcp;
    this.#bindAddress = bindAddress;
    this.identity = identity;
    this.#socket = socket;
    this.#mux = mux;
    this.#stun = stun;
    this.#rendezvous = rendezvous;
    rendezvous.on('punch', (instruction: PunchInstruction) => {
      const started = performance.now();
      this.#establish(instruction, started).then(
        (connection) => this.emit('connection', connection),
        (error: Error) => { debug('incoming from %s failed: %s', instruction.peer, error.message); this.emit('connection-error', error); },
      );
    });
    rendezvous.on('close', (reason) => { if (!this.#closed) this.emit('disconnected', reason); });
    const stunServer = rendezvous.stunServer;
    if (stunServer && keepaliveMs > 0) {
      // Keep the socket's mapping at the STUN server alive, so the server-reflexive candidate
      // this peer signs into intents and accepts stays true while it waits for connections.
      // 15 s is under the shortest common UDP mapping timeout (30 s, Linux conntrack; RFC 4787
      // REQ-5 asks for at least 2 min) and RFC 8445 §11's Tr floor.
      this.#keepalive = setInterval(() => {
        stun.request(stunServer, { retransmission: { rto: 500, rc: 3, rm: 4 } }).catch((error: Error) => debug('keepalive: %s', error.message));
        // The same for the kept TCP connection: its NAT mapping is the signed TCP candidate.
        if (tcp?.alive) tcp.keepalive().catch((error: Error) => debug('TCP keepalive: %s', error.message));
      }, keepaliveMs);
      this.#keepalive.unref();
    }
  }

  get peerId(): string {
    return this.identity.peerId;
  }

  /** The public endpoint of the kept STUN/TCP connection's port L (the TCP mapping), or null. */
  get tcpPublicAddress(): string | null {
    return this.#tcp?.alive ? formatAddress(this.#tcp.mapped) : null;
  }

  /** The server-reflexive UDP endpoint the rendezvous server saw. */
  get publicAddress(): string | null {
    return this.#rendezvous.srflx;
  }

  static async create(options: PeerOptions): Promise<Peer> {
    const identity = options.identity ?? await loadOrCreateIdentity(options.keyFile ?? defaultKeyFile());
    // Large kernel buffers absorb the stream's bursts (measured in bench/connect: no drops at
    // 4 MiB where the defaults lost hundreds of packets per 64 MiB); addresses are IP literals,
    // so skip the per-send DNS lookup and its nextTick.
    const socket = dgram.createSocket({
      type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20,
      lookup: (address, _options, callback) => (callback as (e: null, a: string, f: number) => void)(null, address, 4),
    });
    socket.on('error', (error) => debug('udp socket: %s', error.message));
    const listening = once(socket, 'listening');
    socket.bind(0, options.bindAddress);
    await listening;
    const mux = new UdpMux(socket);
    const stun = new StunUdpClient(socket, { listen: false });
    mux.onStun((data, from) => stun.handle(data, { address: from.address, port: from.port, family: from.family === 6 ? 'IPv6' : 'IPv4', size: data.length }));
    const port = socket.address().port;
    let tcp: TcpMapping | undefined;
    try {
      const rendezvous = await RendezvousClient.connect({
        url: options.server, identity, udpSocket: socket, stunClient: stun, privateEndpoints: privateEndpoints(port, options.bindAddress),
        accept: options.accept, signal: options.signal,
        // TCP candidates: the kept connection's mapping and this host's addresses, all on its port L.
        tcpCandidates: () => (tcp?.alive ? [...privateEndpoints(tcp.localPort, options.bindAddress), formatAddress(tcp.mapped)] : []),
      });
      // The same STUN server that proved srflx, over TCP: a peer without one still connects over UDP.
      const stunServer = rendezvous.stunServer;
      if (stunServer) {
        tcp = await TcpMapping.learn(stunServer, { localAddress: options.bindAddress, signal: options.signal })
          .catch((error: Error) => { debug('no TCP mapping: %s', error.message); return undefined; });
      }
      return new Peer(identity, socket, mux, stun, rendezvous, options.keepaliveMs ?? KEEPALIVE_MS, tcp, options.bindAddress);
    } catch (error) {
      tcp?.close();
      stun.close();
      mux.close();
      socket.close();
      throw error;
    }
  }

  /** Connect to a peer by id: rendezvous, punch, encrypt. Resolves with a Connection. */
  async connect(peerId: string, options: ConnectOptions = {}): Promise<Connection> {
    if (this.#closed) throw new NatpunchError('ERR_TRANSPORT', 'peer is closed');
    const transport = options.transport ?? 'auto';
    if (transport === 'relay') {
      throw new NatpunchError('ERR_TRANSPORT', `--transport ${transport} is not available yet; use udp, tcp or auto`);
    }
    if (transport === 'tcp' && !this.#tcp?.alive) {
      throw new NatpunchError('ERR_TRANSPORT', '--transport tcp: this peer has no kept TCP connection to the rendezvous server\'s STUN endpoint (STUN over TCP failed or closed)');
    }
    const started = performance.now();
    const target = normalizePeerId(peerId);
    const instruction = await this.#rendezvous.connect(target, { signal: options.signal, transport: transport === 'tcp' ? 'tcp' : 'udp' });
    return this.#establish(instruction, started, options.signal);
  }

  /** Follows the transport the initiator's signed intent asked for. */
  #establish(instruction: PunchInstruction, started: number, signal?: AbortSignal): Promise<Connection> {
    return instruction.transport === 'tcp' ? this.#establishTcp(instruction, started, signal) : this.#establishUdp(instruction, started, signal);
  }

  /** TCP simultaneous open from L, then the same Noise handshake over the punched socket. */
  async #establishTcp(instruction: PunchInstruction, started: number, signal?: AbortSignal): Promise<Connection> {
    const tcp = this.#tcp;
    if (!tcp?.alive) throw new NatpunchError('ERR_TRANSPORT', 'TCP punching: this peer has no kept TCP connection, so no TCP mapping to punch from');
    const punched = await tcpSimultaneousOpen({
      localPort: tcp.localPort, localAddress: this.#bindAddress, remoteCandidates: instruction.remoteTcpCandidates,
      role: instruction.role, startAt: instruction.startAt, signal: signal ? AbortSignal.any([signal, this.#closing.signal]) : this.#closing.signal,
    });
    debug('TCP punched to %s after %d connects', formatAddress(punched.remote), punched.attempts);
    const secure = await this.#secure(punched.socket, instruction, signal).catch((error: Error) => {
      punched.socket.destroy();
      throw error;
    });
    const connection = Object.assign(secure, {
      path: 'direct-tcp' as const, technique: 'tcp-simultaneous-open', remote: formatAddress(punched.remote), ms: Math.round(performance.now() - started),
    });
    this.#connections.add(connection);
    secure.once('close', () => { this.#connections.delete(connection); punched.socket.destroy(); });
    return connection;
  }

  /** The Noise handshake over any reliable byte stream, checked against the peer the rendezvous named. */
  async #secure(raw: Duplex, instruction: PunchInstruction, signal?: AbortSignal): Promise<SecureStream> {
    const secure = await SecureStream.establish(raw, {
      identity: this.identity, initiator: instruction.role === 'controlling',
      expectedPeerId: instruction.role === 'controlling' ? instruction.peer : undefined,
      context: new TextEncoder().encode(instruction.session), signal,
    });
    if (secure.remotePeerId !== normalizePeerId(instruction.peer)) {
      secure.destroy();
      throw new NatpunchError('ERR_NOISE', `the peer proved to be ${secure.remotePeerId}, not ${instruction.peer} as the rendezvous said`);
    }
    return secure;
  }

  async #establishUdp(instruction: PunchInstruction, started: number, signal?: AbortSignal): Promise<Connection> {
    const session = new UdpCheckSession({
      mux: this.#mux, session: instruction.session, key: instruction.key, role: instruction.role, startAt: instruction.startAt, signal,
      remoteCandidates: instruction.remoteCandidates.map((address) => ({ type: candidateTypeOf(address), address })),
    });
    this.#sessions.add(session);
    let punched: PunchResult;
    try {
      punched = await session.result;
    } catch (error) {
      session.close();
      this.#sessions.delete(session);
      throw error;
    }
    const path = new UdpPath(this.#mux, punched.remote, instruction.session);
    const stream = createStream(path);
    const secure = await this.#secure(stream, instruction, signal).catch((error: Error) => {
      stream.destroy();
      path.close();
      session.close();
      this.#sessions.delete(session);
      throw error;
    });
    const connection = Object.assign(secure, {
      path: 'direct-udp' as const,
      technique: punched.type === 'host' ? 'udp-lan' : 'udp-hole-punch',
      remote: formatAddress(punched.remote),
      ms: Math.round(performance.now() - started),
    });
    this.#connections.add(connection);
    secure.once('close', () => {
      this.#connections.delete(connection);
      // close() waits for this, like TCP's TIME-WAIT: our last ACK may still need repeating.
      const settled = stream.settle().finally(() => this.#settling.delete(settled));
      this.#settling.add(settled);
      // Keep answering the other side's checks, and let the stream linger to acknowledge a
      // retransmitted FIN, for a moment: the peer's last packets may still be in flight.
      setTimeout(() => { session.close(); this.#sessions.delete(session); path.close(); }, 2000).unref();
    });
    return connection;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#keepalive);
    this.#closing.abort();
    this.#tcp?.close();
    for (const c of this.#connections) c.destroy();
    await Promise.all(this.#settling);
    for (const s of this.#sessions) s.close();
    this.#rendezvous.close();
    this.#stun.close();
    this.#mux.close();
    await new Promise<void>((resolve) => this.#socket.close(() => resolve()));
  }
}

export function createPeer(options: PeerOptions): Promise<Peer> {
  return Peer.create(options);
}

/** Host candidates: every IPv4 interface address with the socket's port (RFC 8445 §5.1.1.1). */
function privateEndpoints(port: number, bindAddress?: string): string[] {
  if (bindAddress && bindAddress !== '0.0.0.0') return [formatAddress({ family: 4, address: bindAddress, port })];
  const addresses = Object.values(os.networkInterfaces()).flat()
    .filter((i): i is os.NetworkInterfaceInfo => !!i && i.family === 'IPv4' && !i.internal)
    .map((i) => formatAddress({ family: 4, address: i.address, port } satisfies TransportAddress));
  return addresses.length ? addresses : [formatAddress({ family: 4, address: '127.0.0.1', port })];
}
