/**
 * The peer's TCP mapping: a TCP connection to the rendezvous server's STUN endpoint, kept open
 * from local port L for the peer's lifetime, and the public endpoint its NAT gave it
 * (XOR-MAPPED-ADDRESS of a Binding over that connection, RFC 8489 §6.2.2).
 *
 * Keeping the connection is what keeps the mapping: a NAT drops a TCP mapping soon after the
 * connection closes, and simultaneous-open connects must leave from the same L to reuse it
 * (Ford, Srisuresh, Kegel 2005, §4.1). The socket is bound explicitly so libuv sets
 * SO_REUSEADDR on it, which lets the punching connects bind L too. Never listen() on L.
 *
 * When the connection dies anyway (the server restarted or closed it idle, or a NAT forgot it so
 * a keepalive went unanswered) the mapping is gone with it: a new connection from a new port L
 * learns a new one ('reopened'). TCP candidates are read from here each time an intent or accept
 * is signed, so later ones carry the new mapping; the registration names no TCP mapping, so there
 * is nothing to move at the server.
 *
 * A connection that closes before any keepalive went over it was closed for being idle by a
 * server or middlebox with a shorter timeout than the keepalive's; when that happens to
 * IDLE_CLOSES_TO_ABANDON connections in a row, the kept connection cannot be held: it is no longer
 * reopened ('abandoned'), and mappings are learnt from short connections (tcp-mapping-short.ts).
 */
import { EventEmitter } from 'node:events';
import { debuglog } from 'node:util';
import { formatAddress, reflexiveAddress, type TransportAddress } from '../wire/index.js';
import { NatpunchError } from '../errors.js';
import { StunTcpClient } from '../stun/tcp-client.js';

const debug = debuglog('natpunch:tcp-mapping');

export interface TcpMappingOptions {
  localAddress?: string;
  timeoutMs?: number;
  /** Aborts learning (not the kept connection: close() ends that). */
  signal?: AbortSignal;
  /**
   * When the kept connection dies (server restart, idle close, a NAT that forgot it), reconnect
   * from a new port L and learn its mapping, retrying after minDelayMs, doubling up to maxDelayMs
   * (default on: 1 s to 60 s; false: stay dead).
   */
  reopen?: { minDelayMs?: number; maxDelayMs?: number } | false;
}

export interface TcpMapping {
  /** The kept connection was reopened: a new port L and the mapping the STUN server saw for it. */
  on(event: 'reopened', listener: (state: { localPort: number; mapped: TransportAddress }) => void): this;
  /** Kept connections kept closing while idle: no more reopening (see IDLE_CLOSES_TO_ABANDON). */
  on(event: 'abandoned', listener: (state: { idleCloses: number }) => void): this;
}

/** Connections closed before their first keepalive, in a row, after which keeping one is given up. */
export const IDLE_CLOSES_TO_ABANDON = 2;

export class TcpMapping extends EventEmitter {
  readonly #server: TransportAddress;
  readonly #options: TcpMappingOptions;
  #client: StunTcpClient;
  #mapped: TransportAddress;
  /** L, remembered: a destroyed socket no longer tells its local port, and L outlives its connection. */
  #localPort: number;
  #closed = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #delayMs = 0;
  /** Whether a keepalive went over the current connection. */
  #keptAlive = false;
  /** Connections in a row that closed before their first keepalive. */
  #idleCloses = 0;
  #abandoned = false;

  private constructor(server: TransportAddress, options: TcpMappingOptions, client: StunTcpClient, mapped: TransportAddress) {
    super();
    this.#server = server;
    this.#options = options;
    this.#client = client;
    this.#mapped = mapped;
    this.#localPort = client.socket.localPort!;
    this.#watch();
  }

  /** Connects to `server` over TCP from an explicitly bound port L and learns L's mapping. */
  static async learn(server: TransportAddress, options: TcpMappingOptions = {}): Promise<TcpMapping> {
    const { client, mapped } = await connectAndLearn(server, options, options.signal);
    return new TcpMapping(server, options, client, mapped);
  }

  /** The NAT's public endpoint for L, as the STUN server saw it (changes when the connection is reopened). */
  get mapped(): TransportAddress {
    return this.#mapped;
  }

  /** L: the local port of the kept connection. */
  get localPort(): number {
    return this.#localPort;
  }

  /** Whether keeping a connection was given up ('abandoned'): it kept closing while idle. */
  get abandoned(): boolean {
    return this.#abandoned;
  }

  /** Whether the kept connection (and so, probably, the NAT mapping) is still there. */
  get alive(): boolean {
    return !this.#client.socket.destroyed && this.#client.socket.readyState === 'open';
  }

  /**
   * A Binding over the kept connection: traffic that keeps the NAT's TCP mapping (and the
   * server's idle timer) alive. One that gets no answer means the connection is dead, whatever
   * the socket thinks (a NAT that forgot it drops the segments silently): it is closed, and so
   * reopened.
   */
  async keepalive(timeoutMs = 5_000): Promise<void> {
    const client = this.#client;
    this.#keptAlive = true;
    try {
      await client.request({ timeoutMs });
    } catch (error) {
      client.socket.destroy();
      throw error;
    }
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#client.socket.destroy();
  }

  #watch(): void {
    const client = this.#client;
    const port = this.localPort;
    client.socket.once('close', () => {
      if (this.#closed || client !== this.#client || this.#options.reopen === false) return;
      this.#idleCloses = this.#keptAlive ? 0 : this.#idleCloses + 1;
      if (this.#idleCloses >= IDLE_CLOSES_TO_ABANDON) {
        this.#abandoned = true;
        debug('kept connection from port %d closed while idle %d times in a row: it cannot be held, not reopening', port, this.#idleCloses);
        this.emit('abandoned', { idleCloses: this.#idleCloses });
        return;
      }
      this.#delayMs = this.#options.reopen?.minDelayMs ?? 1_000;
      debug('kept connection from port %d closed; reopening in %d ms', port, this.#delayMs);
      this.#scheduleReopen();
    });
  }

  #scheduleReopen(): void {
    this.#retryTimer = setTimeout(() => void this.#reopen(), this.#delayMs);
    this.#retryTimer.unref();
  }

  async #reopen(): Promise<void> {
    if (this.#closed) return;
    try {
      const { client, mapped } = await connectAndLearn(this.#server, this.#options);
      if (this.#closed) {
        client.socket.destroy();
        return;
      }
      this.#client = client;
      this.#mapped = mapped;
      this.#localPort = client.socket.localPort!;
      this.#keptAlive = false;
      this.#watch();
      debug('reopened from port %d, mapped %s', this.localPort, formatAddress(mapped));
      this.emit('reopened', { localPort: this.localPort, mapped });
    } catch (error) {
      this.#delayMs = Math.min(this.#delayMs * 2, this.#options.reopen ? this.#options.reopen.maxDelayMs ?? 60_000 : 60_000);
      debug('reopening failed (%s); again in %d ms', (error as Error).message, this.#delayMs);
      if (!this.#closed) this.#scheduleReopen();
    }
  }
}

/** A connection from a freshly bound port and the mapping a Binding over it reports. */
export async function connectAndLearn(server: TransportAddress, options: TcpMappingOptions, signal?: AbortSignal): Promise<{ client: StunTcpClient; mapped: TransportAddress }> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  // localAddress (even 0.0.0.0) makes Node bind() before connect(): that bind sets SO_REUSEADDR.
  const client = await StunTcpClient.connect(server, { localAddress: options.localAddress ?? (server.family === 6 ? '::' : '0.0.0.0'), signal, timeoutMs });
  try {
    const response = await client.request({ timeoutMs, signal });
    const mapped = reflexiveAddress(response);
    if (!mapped) throw new NatpunchError('ERR_STUN_DECODE', `STUN over TCP to ${formatAddress(server)}: the Binding response has no XOR-MAPPED-ADDRESS`);
    return { client, mapped };
  } catch (error) {
    client.socket.destroy();
    throw error;
  }
}
