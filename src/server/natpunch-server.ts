import http from 'node:http';
import { once } from 'node:events';
import { StunServer } from '../stun/server.js';
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
}

/**
 * `natpunch serve` as one process: STUN (RFC 8489 + RFC 5780), and on the HTTP port the
 * rendezvous WebSocket and /healthz. The STUN server feeds the rendezvous its proofs of each
 * peer's server-reflexive address, which is why the two live together by default.
 */
export class NatpunchServer {
  readonly stun: StunServer;
  readonly rendezvous: RendezvousServer | undefined;
  readonly #http: http.Server | undefined;

  private constructor(stun: StunServer, rendezvous?: RendezvousServer, httpServer?: http.Server) {
    this.stun = stun;
    this.rendezvous = rendezvous;
    this.#http = httpServer;
  }

  static async listen(options: NatpunchServerOptions): Promise<NatpunchServer> {
    const observer = new ReflexiveObserver();
    const stun = await StunServer.listen({
      address: options.address, port: options.port, altAddress: options.altAddress, altPort: options.altPort,
      software: `natpunch ${VERSION}`, onBinding: observer.onBinding,
      ...(options.stunTcpIdleTimeoutMs !== undefined ? { tcpIdleTimeoutMs: options.stunTcpIdleTimeoutMs } : {}),
    });
    if (options.httpPort === null) return new NatpunchServer(stun);
    const httpServer = http.createServer((request, response) => {
      if (request.url === '/healthz') {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ ok: true, version: VERSION, stun: stun.stats, rendezvous: rendezvous.stats }));
        return;
      }
      response.writeHead(404, { 'content-type': 'text/plain' });
      response.end('natpunch: the rendezvous WebSocket is at /, health at /healthz\n');
    });
    const rendezvous = RendezvousServer.attach(httpServer, {
      stun, observer,
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
      throw error;
    }
    return new NatpunchServer(stun, rendezvous, httpServer);
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
  }
}
