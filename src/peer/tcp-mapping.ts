/**
 * The peer's TCP mapping: a TCP connection to the rendezvous server's STUN endpoint, kept open
 * from local port L for the peer's lifetime, and the public endpoint its NAT gave it
 * (XOR-MAPPED-ADDRESS of a Binding over that connection, RFC 8489 §6.2.2).
 *
 * Keeping the connection is what keeps the mapping: a NAT drops a TCP mapping soon after the
 * connection closes, and simultaneous-open connects must leave from the same L to reuse it
 * (Ford, Srisuresh, Kegel 2005, §4.1). The socket is bound explicitly so libuv sets
 * SO_REUSEADDR on it, which lets the punching connects bind L too. Never listen() on L.
 */
import { formatAddress, reflexiveAddress, type TransportAddress } from '../wire/index.js';
import { NatpunchError } from '../errors.js';
import { StunTcpClient } from '../stun/tcp-client.js';

export class TcpMapping {
  readonly #client: StunTcpClient;
  /** The NAT's public endpoint for L, as the STUN server saw it. */
  readonly mapped: TransportAddress;

  private constructor(client: StunTcpClient, mapped: TransportAddress) {
    this.#client = client;
    this.mapped = mapped;
  }

  /** Connects to `server` over TCP from an explicitly bound port L and learns L's mapping. */
  static async learn(server: TransportAddress, options: { localAddress?: string; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<TcpMapping> {
    const timeoutMs = options.timeoutMs ?? 5_000;
    // localAddress (even 0.0.0.0) makes Node bind() before connect(): that bind sets SO_REUSEADDR.
    const client = await StunTcpClient.connect(server, { localAddress: options.localAddress ?? '0.0.0.0', signal: options.signal, timeoutMs });
    try {
      const response = await client.request({ timeoutMs, signal: options.signal });
      const mapped = reflexiveAddress(response);
      if (!mapped) throw new NatpunchError('ERR_STUN_DECODE', `STUN over TCP to ${formatAddress(server)}: the Binding response has no XOR-MAPPED-ADDRESS`);
      return new TcpMapping(client, mapped);
    } catch (error) {
      client.socket.destroy();
      throw error;
    }
  }

  /** L: the local port of the kept connection. */
  get localPort(): number {
    return this.#client.socket.localPort!;
  }

  /** Whether the kept connection (and so, probably, the NAT mapping) is still there. */
  get alive(): boolean {
    return !this.#client.socket.destroyed && this.#client.socket.readyState === 'open';
  }

  /** A Binding over the kept connection: traffic that keeps the NAT's TCP mapping (and the server's idle timer) alive. */
  async keepalive(timeoutMs = 5_000): Promise<void> {
    await this.#client.request({ timeoutMs });
  }

  close(): void {
    this.#client.socket.destroy();
  }
}
