/**
 * Reachability by dial-back: at registration the server tries to reach the peer unsolicited, the
 * way libp2p AutoNAT (a peer asks others to dial it back) and Tailscale's netcheck do, so that a
 * peer learns whether others can simply dial it and connection reversal can replace punching.
 *
 * - UDP: a STUN Binding request (USERNAME = the connection's hello token) sent from a different
 *   IP address and port of the server (its RFC 5780 alternate address) to the peer's proven
 *   server-reflexive endpoint. It only arrives where the NAT filters endpoint-independently
 *   (RFC 4787 §5: no NAT, or full cone) — the peer's own STUN request went to the primary
 *   address, so no address- or port-dependent filter lets it in. The peer answers it from its
 *   one UDP socket; the answer proves it arrived (RFC 5780 §4.4's "change IP and port" test,
 *   run by the server instead of the client).
 * - TCP: a connection to the peer's public IP (the WebSocket's source address, never an address
 *   the peer names) and the port of its reversal listener (an ephemeral port, never L). It only
 *   completes with no NAT in the way, or a port mapping. The server sends a preamble carrying the
 *   token; the peer answers with DIAL_BACK_OK.
 *
 * Both are bounded: a few packets, one connection, `timeoutMs` per registration, aimed only at
 * the address the peer registered from (so a peer cannot aim the server at a stranger).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { type Clock, realClock } from '../clock.js';
import { type TcpNet, realTcpNet } from '../tcp-net.js';
import {
  type TransportAddress, AttrType, Method, MessageClass, decodeMessage, encodeMessage, isStunMessage, username,
} from '../wire/index.js';

/** Preamble of the server's TCP dial-back: MAGIC + the 16 bytes of the hello token. */
export const DIAL_BACK_MAGIC = Buffer.from('NPDB');
/** Preamble of a TCP reversal connection: MAGIC + reversalTag(session). */
export const REVERSAL_MAGIC = Buffer.from('NPRV');
export const PREAMBLE_LENGTH = 20;
/** The peer's answer to a TCP dial-back preamble whose token it expected. */
export const DIAL_BACK_OK = Buffer.from('NPOK');
export const DEFAULT_DIAL_BACK_TIMEOUT_MS = 1_000;

export interface DialBackOptions {
  /** The server address to dial from: its alternate address, different from the STUN primary. */
  localAddress: string;
  /** Give up after this long (default DEFAULT_DIAL_BACK_TIMEOUT_MS); the server uses dialBackTimeout() up to this. */
  timeoutMs?: number;
  /** Makes the UDP probe's socket (default dgram.createSocket; src/sim passes its own). */
  createSocket?: (type: 'udp4' | 'udp6') => dgram.Socket;
  /** Makes the TCP probe's connection (default node:net). */
  net?: TcpNet;
  /** The probes' timers (default the real clock). */
  clock?: Clock;
}

/**
 * How long to wait for a dial-back, from the server's smoothed RTT to the peer (its WebSocket
 * ping is answered before the peer registers): a UDP probe needs one round trip, a TCP one two
 * (handshake, then preamble and answer), so 3 RTTs plus 50 ms for processing, at least
 * MIN_DIAL_BACK_TIMEOUT_MS, at most `limitMs`. Unmeasured: `limitMs`. Every peer waits this
 * long to register unless it is reachable, so it must not be a flat second; a peer that answers
 * late only loses connection reversal (it punches instead), never a connection.
 */
export function dialBackTimeout(srttMs: number | undefined, limitMs = DEFAULT_DIAL_BACK_TIMEOUT_MS): number {
  if (srttMs === undefined || !Number.isFinite(srttMs)) return limitMs;
  return Math.round(Math.min(limitMs, Math.max(MIN_DIAL_BACK_TIMEOUT_MS, 3 * srttMs + 50)));
}
export const MIN_DIAL_BACK_TIMEOUT_MS = 100;

/** The TCP dial-back preamble for a hello token (base64url of 16 bytes). */
export function dialBackPreamble(token: string): Buffer {
  return Buffer.concat([DIAL_BACK_MAGIC, Buffer.from(token, 'base64url')]);
}

/**
 * Sends Binding requests (at 0, 1/4 and 1/2 of the timeout: a lost packet is not "unreachable")
 * from an ephemeral port of `localAddress` to `target`; true once a success response with the
 * same transaction id arrives from exactly `target`.
 */
export function dialBackUdp(target: TransportAddress, token: string, options: DialBackOptions): Promise<boolean> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_DIAL_BACK_TIMEOUT_MS;
  if (target.family !== (net.isIPv6(options.localAddress) ? 6 : 4)) return Promise.resolve(false);
  const clock = options.clock ?? realClock;
  return new Promise((resolve) => {
    const socket = (options.createSocket ?? dgram.createSocket)(target.family === 6 ? 'udp6' : 'udp4');
    const transactionId = randomBytes(12);
    const request = encodeMessage({
      method: Method.Binding, messageClass: MessageClass.Request, transactionId,
      attributes: [{ type: AttrType.Username, value: username.encode(token) }],
    }, { fingerprint: true });
    const timers: unknown[] = [];
    let done = false;
    const finish = (reachable: boolean): void => {
      if (done) return;
      done = true;
      for (const timer of timers) clock.clearTimeout(timer);
      socket.close();
      resolve(reachable);
    };
    socket.on('error', () => finish(false));
    socket.on('message', (data, from) => {
      if (from.address !== target.address || from.port !== target.port || !isStunMessage(data)) return;
      try {
        const message = decodeMessage(data);
        if (message.messageClass === MessageClass.SuccessResponse && Buffer.from(message.transactionId).equals(transactionId)) finish(true);
      } catch {
        // RFC 8489 §6.3: malformed messages are discarded silently.
      }
    });
    socket.bind(0, options.localAddress, () => {
      const send = (): void => { if (!done) socket.send(request, target.port, target.address); };
      send();
      timers.push(clock.setTimeout(send, timeoutMs / 4), clock.setTimeout(send, timeoutMs / 2), clock.setTimeout(() => finish(false), timeoutMs));
    });
  });
}

/**
 * Connects from `localAddress` to `target`, sends the dial-back preamble for `token`; true once
 * the peer answers DIAL_BACK_OK (anything else listening there does not count).
 */
export function dialBackTcp(target: TransportAddress, token: string, options: DialBackOptions): Promise<boolean> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_DIAL_BACK_TIMEOUT_MS;
  const clock = options.clock ?? realClock;
  return new Promise((resolve) => {
    const socket = (options.net ?? realTcpNet).connect({ host: target.address, port: target.port, localAddress: options.localAddress, family: target.family });
    let received = Buffer.alloc(0);
    let done = false;
    const finish = (reachable: boolean): void => {
      if (done) return;
      done = true;
      clock.clearTimeout(timer);
      socket.destroy();
      resolve(reachable);
    };
    const timer = clock.setTimeout(() => finish(false), timeoutMs);
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
    socket.on('connect', () => socket.write(dialBackPreamble(token)));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= DIAL_BACK_OK.length) finish(received.subarray(0, DIAL_BACK_OK.length).equals(DIAL_BACK_OK));
    });
  });
}
