import http from 'node:http';
import { once } from 'node:events';
import { StunServer, type StunLimits } from '../stun/server.js';
import { type HttpLimits, type HttpLimitStats, HttpConnectionLimiter } from './http-limits.js';
import { TurnServer } from '../turn/server.js';
import { PeerAddressPolicy } from '../turn/peer-policy.js';
import { type RelayConfig, defaultRelayAddress, relayOffers, relaySecret, serverAddresses } from './relay-config.js';
import { type RendezvousLimits, RendezvousServer, ReflexiveObserver } from '../rendezvous/index.js';
import { type RelayOffer, unmappedIp } from '../rendezvous/messages.js';
import { formatAddress } from '../wire/index.js';
import { VERSION } from '../version.js';
import { type SharedState, openSharedState } from './shared-state.js';
import { ServerMetrics } from '../metrics/server-metrics.js';
import { httpHandler } from './http/handler.js';

/** What {@link createServer} starts, and where (`natpunch serve`'s flags, as options). */
export interface NatpunchServerOptions {
  /** The IP address to serve on (`--address`): STUN, TURN and HTTP all bind it. */
  address: string;
  /**
   * Further addresses to serve on besides `address` (`--address` given again), e.g. the host's
   * IPv6 one: STUN (without RFC 5780), TURN and the rendezvous on the same ports, one registry.
   */
  extraAddresses?: string[];
  /** A second address of this host (`--alt-address`): turns on RFC 5780 behaviour discovery (`checkNat` needs it). */
  altAddress?: string;
  /** The STUN and TURN port, UDP and TCP (default 3478; 0: an ephemeral port, the same for both). */
  port?: number;
  /** The second STUN port for RFC 5780, with `altAddress` (default 3479; 0: ephemeral). */
  altPort?: number;
  /** HTTP port for the rendezvous WebSocket, /healthz, /metrics and the dashboard; null turns them off (STUN only). */
  httpPort?: number | null;
  /**
   * `--metrics-token`: requests with `Authorization: Bearer TOKEN` may read /metrics, the
   * dashboard and /healthz's details from anywhere (without it: loopback clients only).
   */
  metricsToken?: string;
  /** How long an idle STUN/TCP connection is kept (default 30 s, see StunServer). */
  stunTcpIdleTimeoutMs?: number;
  /** The STUN (and TURN) listeners' limits, on every address (defaults: StunServerOptions). */
  stunLimits?: StunLimits;
  /** The HTTP listeners' limits (rendezvous WebSocket, /healthz), on every address (defaults: HttpLimits). */
  httpLimits?: HttpLimits;
  /** Relaying (TURN): the built-in server is on unless `relay.builtIn` is false. */
  relay?: RelayConfig;
  /** STUN/TURN over TLS (`--tls-cert`, `--tls-key`), on `tls.port` (default 5349). */
  tls?: {
    /** The PEM certificate chain. */
    cert: string | Buffer;
    /** Its PEM private key. */
    key: string | Buffer;
    /** The TLS port (default 5349). */
    port?: number;
  };
  /** The rendezvous's limits (`--max-peers`, `--max-connections`, `--max-unregistered`; defaults: DEFAULT_RENDEZVOUS_LIMITS). */
  rendezvousLimits?: Partial<RendezvousLimits>;
  /**
   * Share the rendezvous registry with other nodes through Redis (`--redis URL`): peers
   * registered on any node reach each other. Without it, state stays in this process.
   */
  redis?: {
    /** `redis://[:PASSWORD@]HOST[:PORT][/DB]`, or `rediss://` for TLS. */
    url: string;
    /** This node's name among those sharing the Redis (default hostname:pid). */
    nodeName?: string;
    /** How long a dead node's registrations outlive it, ms (default 10 s, see RedisRegistry). */
    registryTtlMs?: number;
    /** Key and channel prefix (default "natpunch:"), so several deployments can share a Redis. */
    prefix?: string;
  };
}

/**
 * `natpunch serve` as one process: STUN (RFC 8489 + RFC 5780), and on the HTTP port the
 * rendezvous WebSocket and /healthz. The STUN server feeds the rendezvous its proofs of each
 * peer's server-reflexive address, which is why the two live together by default.
 */
export class NatpunchServer {
  /** STUN (and TURN) on `address`, with RFC 5780's alternate address and port when given. */
  readonly stun: StunServer;
  /** STUN (and TURN) on each of `extraAddresses`, in order. */
  readonly extraStun: readonly StunServer[];
  /** @internal The built-in TURN relay (undefined with `relay.builtIn: false` or without HTTP). */
  readonly turn: TurnServer | undefined;
  /** @internal The rendezvous service (undefined with `httpPort: null`). */
  readonly rendezvous: RendezvousServer | undefined;
  readonly #http: http.Server | undefined;
  readonly #extraHttp: readonly http.Server[];
  readonly #httpLimiter: HttpConnectionLimiter | undefined;
  #shared: SharedState | undefined;
  /** @internal What /metrics and the dashboard show (absent without HTTP). */
  readonly metrics: ServerMetrics | undefined;

  /** @internal */
  private constructor(stun: StunServer, extraStun: StunServer[], turn?: TurnServer, rendezvous?: RendezvousServer, httpServer?: http.Server, extraHttp: http.Server[] = [], httpLimiter?: HttpConnectionLimiter, metrics?: ServerMetrics) {
    this.#httpLimiter = httpLimiter;
    this.metrics = metrics;
    this.stun = stun;
    this.extraStun = extraStun;
    this.turn = turn;
    this.rendezvous = rendezvous;
    this.#http = httpServer;
    this.#extraHttp = extraHttp;
  }

  /** As {@link createServer}. */
  static async listen(options: NatpunchServerOptions): Promise<NatpunchServer> {
    const observer = new ReflexiveObserver();
    const extraAddresses = options.extraAddresses ?? [];
    const relay = options.relay ?? {};
    const secret = relaySecret(relay);
    const relayAddress = relay.relayAddress ?? defaultRelayAddress(options.address);
    // The policy is built first: a bad --relay-allow is a usage error before any port is taken.
    const turn = relay.builtIn === false ? undefined : new TurnServer({
      relayAddress, realm: relay.realm ?? 'natpunch', users: relay.users, secret, software: `natpunch ${VERSION}`,
      policy: new PeerAddressPolicy({
        allow: relay.allow, deny: relay.deny,
        serverAddresses: serverAddresses([options.address, ...extraAddresses, relayAddress, ...(options.altAddress ? [options.altAddress] : [])]),
      }),
      ...(relay.userQuota !== undefined ? { userQuota: relay.userQuota } : {}),
      ...(relay.totalQuota !== undefined ? { totalQuota: relay.totalQuota } : {}),
      ...(relay.bandwidth !== undefined ? { bandwidth: relay.bandwidth } : {}),
    });
    let stun: StunServer;
    const extraStun: StunServer[] = [];
    const common = {
      software: `natpunch ${VERSION}`, onBinding: observer.onBinding,
      ...(turn ? { shared: turn } : {}),
      ...options.stunLimits,
      ...(options.stunTcpIdleTimeoutMs !== undefined ? { tcpIdleTimeoutMs: options.stunTcpIdleTimeoutMs } : {}),
    };
    try {
      stun = await StunServer.listen({
        address: options.address, port: options.port, altAddress: options.altAddress, altPort: options.altPort,
        ...common, ...(options.tls ? { tls: options.tls } : {}),
      });
      // The same ports on every further address (an ephemeral primary port: the one it got), so a
      // peer finds STUN at the rendezvous server's IP in either family. One observer: a proof
      // over IPv6 registers like one over IPv4.
      try {
        for (const address of extraAddresses) extraStun.push(await StunServer.listen({ address, port: stun.addresses[0]!.port, ...common }));
      } catch (error) {
        await Promise.all([stun.close(), ...extraStun.map((s) => s.close())]);
        throw error;
      }
    } catch (error) {
      await turn?.close();
      throw error;
    }
    if (options.httpPort === null) return new NatpunchServer(stun, extraStun, turn);
    // Redis first: a node that cannot reach it fails before it takes its HTTP port.
    let shared: SharedState | undefined;
    try {
      shared = options.redis ? await openSharedState(options.redis) : undefined;
    } catch (error) {
      await Promise.all([stun, ...extraStun].map((s) => s.close()));
      await turn?.close();
      throw error;
    }
    const offers = relayOffers({
      ...(turn ? { builtIn: { host: relayAddress, port: stun.addresses[0]!.port, ...(stun.tlsAddress ? { tlsPort: stun.tlsAddress.port } : {}) } } : {}),
      external: relay.external ?? [], secret,
    });
    // A peer that came in by a further address (IPv6, say) is offered the built-in relay there:
    // it may have no route to the primary one. The relayed addresses stay relayAddress's.
    const extraOffers = new Map(extraAddresses.map((address, i) => [address, relayOffers({
      ...(turn ? { builtIn: { host: address, port: extraStun[i]!.addresses[0]!.port } } : {}), external: relay.external ?? [], secret,
    })]));
    const offersFor = (peerId: string, localAddress: string): RelayOffer[] => (extraOffers.get(unmappedIp(localAddress) ?? localAddress) ?? offers)(peerId);
    // One limiter for every HTTP listener: the caps are the process's (decision 014-server-limits).
    const httpLimiter = new HttpConnectionLimiter(options.httpLimits);
    // The metrics read the rendezvous, which is attached to the HTTP server: the handler is set
    // once both exist, before anything listens, so no request can come first.
    let handle: ((request: http.IncomingMessage, response: http.ServerResponse) => void) | undefined;
    const onRequest = (request: http.IncomingMessage, response: http.ServerResponse): void => handle!(request, response);
    const httpServer = http.createServer(onRequest);
    httpLimiter.apply(httpServer);
    const rendezvous = RendezvousServer.attach(httpServer, {
      stun, observer, relays: offersFor, ...(options.rendezvousLimits ? { limits: options.rendezvousLimits } : {}),
      ...(shared ? { registry: shared.registry, bus: shared.bus, nodeId: shared.bus.node } : {}),
      // Dial-back from the alternate address: a probe from the address the peer's own STUN went
      // to would pass any NAT that merely remembers that destination.
      ...(options.altAddress ? { dialBack: { localAddress: options.altAddress } } : {}),
      // Every primary STUN endpoint; a peer uses only the one on the IP it reached the rendezvous at.
      stunAddresses: [stun, ...extraStun].map((s) => formatAddress(s.addresses[0]!)),
    });
    const metrics = new ServerMetrics({ stun: [stun, ...extraStun], turn, rendezvous, http: () => httpLimiter.stats });
    handle = httpHandler({
      metrics, token: options.metricsToken,
      health: () => ({ version: VERSION, stun: stun.stats, rendezvous: rendezvous.stats, ...(turn ? { turn: turn.stats } : {}) }),
    });
    // The further addresses' HTTP servers hand their WebSocket upgrades to the one the
    // rendezvous is attached to: one registry, whichever address a peer came in by.
    const extraHttp = extraAddresses.map(() => {
      const server = http.createServer(onRequest);
      httpLimiter.apply(server);
      server.on('upgrade', (request, socket, head) => httpServer.emit('upgrade', request, socket, head));
      return server;
    });
    try {
      httpServer.listen(options.httpPort ?? 8080, options.address);
      await once(httpServer, 'listening');
      // The port the primary got (it may have been ephemeral), on every further address.
      const { port } = httpServer.address() as { port: number };
      await Promise.all(extraHttp.map((server, i) => {
        server.listen(port, extraAddresses[i]);
        return once(server, 'listening');
      }));
    } catch (error) {
      for (const server of [httpServer, ...extraHttp]) server.close();
      metrics.close();
      await rendezvous.close();
      await shared?.close();
      await Promise.all([stun, ...extraStun].map((s) => s.close()));
      await turn?.close();
      throw error;
    }
    const server = new NatpunchServer(stun, extraStun, turn, rendezvous, httpServer, extraHttp, httpLimiter, metrics);
    server.#shared = shared;
    return server;
  }

  /** @internal Counters of the HTTP listeners' connection limits (all zero when HTTP is off). */
  get httpStats(): HttpLimitStats {
    return this.#httpLimiter?.stats ?? { connections: 0, refused: 0, evicted: 0, headerTimeouts: 0 };
  }

  /** This node's name among the nodes sharing a Redis (undefined without --redis). */
  get nodeName(): string | undefined {
    return this.#shared?.bus.node;
  }

  /** ws:// URL of the rendezvous service, if it runs. */
  get rendezvousUrl(): string | undefined {
    return this.#http && urlOf(this.#http);
  }

  /** The rendezvous's URLs on the further addresses, in order. */
  get extraRendezvousUrls(): string[] {
    return this.#extraHttp.map(urlOf).filter((url): url is string => url !== undefined);
  }

  /**
   * Stops every listener. `graceMs` (a graceful shutdown, SIGTERM): no new connections, every
   * registered peer told to register elsewhere and given that long to go by itself, then the rest
   * are cut; its registrations are removed from a shared registry before Redis is let go.
   */
  async close(options: { graceMs?: number } = {}): Promise<void> {
    // Stop accepting at once; the open sockets (and their upgrades' WebSockets) are closed below.
    for (const server of [...(this.#http ? [this.#http] : []), ...this.#extraHttp]) server.close();
    this.metrics?.close();
    await this.rendezvous?.close(options);
    await this.#shared?.close();
    for (const server of [...(this.#http ? [this.#http] : []), ...this.#extraHttp]) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await Promise.all([this.stun, ...this.extraStun].map((s) => s.close()));
    await this.turn?.close();
  }
}

function urlOf(server: http.Server): string | undefined {
  const address = server.address();
  if (!address || typeof address === 'string') return undefined;
  return `ws://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}/`;
}

/**
 * Starts what `natpunch serve` runs, in this process: STUN (with RFC 5780 behaviour discovery
 * given `altAddress`), the TURN relay, and the rendezvous WebSocket with /healthz, /metrics and
 * the dashboard on `httpPort`. Resolves once every socket listens; rejects, with nothing left
 * bound, when one cannot be bound (EADDRINUSE, EADDRNOTAVAIL) or Redis (`redis`) is unreachable.
 *
 * @example
 * ```ts
 * const server = await createServer({ address: '127.0.0.1', port: 0, httpPort: 0 });
 * const peer = await createPeer({ server: server.rendezvousUrl! });
 * // ...
 * await peer.close();
 * await server.close();
 * ```
 */
export function createServer(options: NatpunchServerOptions): Promise<NatpunchServer> {
  return NatpunchServer.listen(options);
}
