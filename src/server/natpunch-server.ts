import http from 'node:http';
import { once } from 'node:events';
import { StunServer } from '../stun/server.js';
import { TurnServer } from '../turn/server.js';
import { PeerAddressPolicy } from '../turn/peer-policy.js';
import { type RelayConfig, defaultRelayAddress, relayOffers, relaySecret, serverAddresses } from './relay-config.js';
import { RendezvousServer, ReflexiveObserver } from '../rendezvous/index.js';
import { formatAddress } from '../wire/index.js';
import { VERSION } from '../version.js';

export interface NatpunchServerOptions {
  address: string;
  altAddress?: string;
  port?: number;
  altPort?: number;
  /** HTTP port for the rendezvous WebSocket and /healthz; null turns both off (STUN only). */
  httpPort?: number | null;
  /** How long an idle STUN/TCP connection is kept (default 30 s, see StunServer). */
  stunTcpIdleTimeoutMs?: number;
  /** Relaying (TURN): the built-in server is on unless `relay.builtIn` is false. */
  relay?: RelayConfig;
  /** STUN/TURN over TLS (`--tls-cert`, `--tls-key`), on `tls.port` (default 5349). */
  tls?: { cert: string | Buffer; key: string | Buffer; port?: number };
}

/**
 * `natpunch serve` as one process: STUN (RFC 8489 + RFC 5780), and on the HTTP port the
 * rendezvous WebSocket and /healthz. The STUN server feeds the rendezvous its proofs of each
 * peer's server-reflexive address, which is why the two live together by default.
 */
export class NatpunchServer {
  readonly stun: StunServer;
  readonly turn: TurnServer | undefined;
  readonly rendezvous: RendezvousServer | undefined;
  readonly #http: http.Server | undefined;

  private constructor(stun: StunServer, turn?: TurnServer, rendezvous?: RendezvousServer, httpServer?: http.Server) {
    this.stun = stun;
    this.turn = turn;
    this.rendezvous = rendezvous;
    this.#http = httpServer;
  }

  static async listen(options: NatpunchServerOptions): Promise<NatpunchServer> {
    const observer = new ReflexiveObserver();
    const relay = options.relay ?? {};
    const secret = relaySecret(relay);
    const relayAddress = relay.relayAddress ?? defaultRelayAddress(options.address);
    // The policy is built first: a bad --relay-allow is a usage error before any port is taken.
    const turn = relay.builtIn === false ? undefined : new TurnServer({
      relayAddress, realm: relay.realm ?? 'natpunch', users: relay.users, secret, software: `natpunch ${VERSION}`,
      policy: new PeerAddressPolicy({
        allow: relay.allow, deny: relay.deny,
        serverAddresses: serverAddresses([options.address, relayAddress, ...(options.altAddress ? [options.altAddress] : [])]),
      }),
      ...(relay.userQuota !== undefined ? { userQuota: relay.userQuota } : {}),
      ...(relay.totalQuota !== undefined ? { totalQuota: relay.totalQuota } : {}),
      ...(relay.bandwidth !== undefined ? { bandwidth: relay.bandwidth } : {}),
    });
    let stun: StunServer;
    try {
      stun = await StunServer.listen({
        address: options.address, port: options.port, altAddress: options.altAddress, altPort: options.altPort,
        software: `natpunch ${VERSION}`, onBinding: observer.onBinding,
        ...(turn ? { shared: turn } : {}),
        ...(options.tls ? { tls: options.tls } : {}),
        ...(options.stunTcpIdleTimeoutMs !== undefined ? { tcpIdleTimeoutMs: options.stunTcpIdleTimeoutMs } : {}),
      });
    } catch (error) {
      await turn?.close();
      throw error;
    }
    if (options.httpPort === null) return new NatpunchServer(stun, turn);
    const offers = relayOffers({
      ...(turn ? { builtIn: { host: relayAddress, port: stun.addresses[0]!.port, ...(stun.tlsAddress ? { tlsPort: stun.tlsAddress.port } : {}) } } : {}),
      external: relay.external ?? [], secret,
    });
    const httpServer = http.createServer((request, response) => {
      if (request.url === '/healthz') {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ ok: true, version: VERSION, stun: stun.stats, rendezvous: rendezvous.stats, ...(turn ? { turn: turn.stats } : {}) }));
        return;
      }
      response.writeHead(404, { 'content-type': 'text/plain' });
      response.end('natpunch: the rendezvous WebSocket is at /, health at /healthz\n');
    });
    const rendezvous = RendezvousServer.attach(httpServer, {
      stun, observer, relays: offers,
      // Dial-back from the alternate address: a probe from the address the peer's own STUN went
      // to would pass any NAT that merely remembers that destination.
      ...(options.altAddress ? { dialBack: { localAddress: options.altAddress } } : {}), stunAddresses: stun.addresses.filter((a) => a.address === stun.addresses[0]!.address && a.port === stun.addresses[0]!.port).map(formatAddress),
    });
    httpServer.listen(options.httpPort ?? 8080, options.address);
    try {
      await once(httpServer, 'listening');
    } catch (error) {
      await rendezvous.close();
      await stun.close();
      await turn?.close();
      throw error;
    }
    return new NatpunchServer(stun, turn, rendezvous, httpServer);
  }

  /** ws:// URL of the rendezvous service, if it runs. */
  get rendezvousUrl(): string | undefined {
    const address = this.#http?.address();
    if (!address || typeof address === 'string') return undefined;
    return `ws://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}/`;
  }

  async close(): Promise<void> {
    await this.rendezvous?.close();
    if (this.#http) {
      this.#http.closeAllConnections();
      await new Promise<void>((resolve) => this.#http!.close(() => resolve()));
    }
    await this.stun.close();
    await this.turn?.close();
  }
}
