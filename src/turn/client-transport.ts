/**
 * What carries a TURN client's messages to its server: one UDP 5-tuple, one TCP connection or
 * one TLS connection. The client never owns a socket itself (STYLE §1, §8): natpunch's peer
 * sends STUN, connectivity checks, data and TURN from ONE UDP socket, because the NAT mapping
 * belongs to that socket, so the UDP transport is a view of a socket someone else reads.
 * @see RFC 8656 §3.1 (transports between client and server), §12.5 (ChannelData over streams)
 */

import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import { AbortedError, NatpunchError, TransactionTimeoutError } from '../errors.js';
import { StreamFramer } from '../stun/framing.js';
import { type TransportAddress, formatAddress } from '../wire/index.js';
import { createBatchSender } from '../punch/udp-batch.js';
import { receiveDatagrams } from '../punch/udp-receive.js';
import { ipLiteralLookup } from '../punch/ip-literal-lookup.js';
import { CHANNEL_DATA_HEADER, acceptedChannel, channelDataLength } from './channel-data.js';

export interface TurnTransport {
  /** 'udp' datagrams, or a 'tcp' / 'tls' byte stream (ChannelData is then padded, RFC 8656 §12.5). */
  readonly kind: 'udp' | 'tcp' | 'tls';
  /** Send one STUN message or ChannelData message. Never throws once closed: it drops. */
  send(bytes: Uint8Array): void;
  /** The one handler every message from the server goes to, one message per call (replaces any earlier one). */
  onReceive(handler: (bytes: Uint8Array) => void): void;
  /**
   * Where a transport reads its own socket (openUdpTransport), ChannelData from the server
   * is opened where it is read and goes to this handler instead of `onReceive`: the channel and
   * one view of the application data, valid during the call. A relayed stream's every datagram
   * takes this way, so it costs one view, not a view of the message and another of its data.
   * Anything it does not take (STUN, a malformed or unknown frame) still goes to `onReceive`.
   */
  onChannelData?(handler: (channel: number, data: Uint8Array) => void): void;
  /**
   * Told once when the transport ends by itself (the server closed the connection, a framing
   * error), not when `close()` is called. Stream transports only: UDP has no end.
   */
  onClose?(handler: (error: Error) => void): void;
  /** Stop sending and delivering. Idempotent. A transport over a socket it did not create leaves it open. */
  close(): void;
}

/** A UDP transport over a socket its owner reads: the owner offers each datagram with `feed`. */
export interface UdpTurnTransport extends TurnTransport {
  readonly kind: 'udp';
  readonly server: TransportAddress;
  /**
   * Sends several messages to the server in one system call (sendmmsg, native/udp-batch), in
   * order; present only where the transport owns a socket the addon can batch on.
   */
  sendBatch?(messages: readonly Uint8Array[]): void;
  /**
   * Offer a datagram the owner received. Returns true when it came from the server's address
   * and was handed to the client (the owner then has nothing else to do with it), false
   * otherwise. Never throws.
   */
  feed(bytes: Uint8Array, from: { address: string; port: number }): boolean;
}

/** Canonical form of what `rinfo.address` says, so `::ffff:127.0.0.1` and `127.0.0.1` compare equal. */
function sameEndpoint(a: { address: string; port: number }, b: TransportAddress): boolean {
  if (a.port !== b.port) return false;
  // The usual case, per relayed datagram: the same text. No string is made for it.
  if (a.address === b.address) return true;
  const strip = (s: string): string => (s.startsWith('::ffff:') && net.isIPv4(s.slice(7)) ? s.slice(7) : s).toLowerCase();
  return strip(a.address) === strip(b.address);
}

/**
 * A UDP transport to `server` over `socket`, which stays the caller's: it is neither read nor
 * closed here. The caller passes every datagram to `feed` (which keeps only the server's).
 */
export function udpTransport(socket: dgram.Socket, server: TransportAddress): UdpTurnTransport {
  let handler: ((bytes: Uint8Array) => void) | undefined;
  let closed = false;
  return {
    kind: 'udp',
    server,
    send(bytes) {
      if (closed) return;
      // A send error (unreachable, socket closed) is a lost datagram: transactions retransmit and time out.
      socket.send(bytes, server.port, server.address, () => {});
    },
    onReceive(h) {
      handler = h;
    },
    feed(bytes, from) {
      if (closed || !sameEndpoint(from, server)) return false;
      handler?.(bytes);
      return true;
    },
    close() {
      closed = true;
      handler = undefined;
    },
  };
}

/**
 * A UDP transport with a socket of its own, bound to `localAddress` (default: the wildcard of
 * the server's family) on an ephemeral port; `close()` closes the socket.
 */
export async function openUdpTransport(server: TransportAddress, options: { localAddress?: string; localPort?: number } = {}): Promise<UdpTurnTransport> {
  // 4 MiB as the peer's own socket: a relayed stream's bursts must not overflow the default 208 KiB.
  // The server is an IP literal: no DNS lookup (and its nextTick) per send, as on the peer's socket.
  const family = server.family === 6 ? 6 : 4;
  const socket = dgram.createSocket({
    type: family === 6 ? 'udp6' : 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20,
    lookup: ipLiteralLookup(family),
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(options.localPort ?? 0, options.localAddress, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  // Errors on an unconnected UDP socket (ICMP unreachable) are per-datagram; they must not crash.
  socket.on('error', () => {});
  const inner = udpTransport(socket, server);
  // Reads in batches where the addon runs (decision 009): a relayed stream brings tens of
  // thousands of datagrams a second. The views are valid only during the call; the client
  // decodes STUN into copies, and a relay path's frames are opened in place and copied by
  // whatever keeps them, as on a direct path. GRO: the server's runs of ChannelData to us (sent
  // with UDP GSO) arrive as one read.
  let onChannelData: ((channel: number, data: Uint8Array) => void) | undefined;
  // feed() keeps nothing of `from`: one object for the whole socket, not one per datagram.
  const from = { address: '', port: 0 };
  const receiver = receiveDatagrams(socket, (batch) => {
    for (let i = 0; i < batch.count; i++) {
      from.address = batch.address(i);
      from.port = batch.port(i);
      // The server's ChannelData, as the server writes its address (anything else, a mapped
      // form included, goes the long way through feed and the client's own checks).
      if (onChannelData !== undefined && from.port === server.port && from.address === server.address) {
        const start = batch.offset(i);
        const channel = acceptedChannel(batch.slab, start, start + batch.length(i));
        if (channel >= 0) {
          const data = start + CHANNEL_DATA_HEADER;
          onChannelData(channel, batch.slab.subarray(data, data + channelDataLength(batch.slab, start)));
          continue;
        }
      }
      inner.feed(batch.view(i), from);
    }
  }, { gro: true });
  const batcher = createBatchSender(socket);
  let closed = false;
  return {
    ...inner,
    // Without a callback, as the peer's own sends: a relayed stream's acknowledgements go one by
    // one, and a callback costs node:dgram a completion per datagram. A send error reaches the
    // socket's 'error' listener above (a lost datagram, as in udpTransport).
    send(bytes) {
      if (!closed) socket.send(bytes, server.port, server.address);
    },
    ...(batcher ? { sendBatch: (messages: readonly Uint8Array[]) => batcher.send(messages, server) } : {}),
    onChannelData(handler) {
      onChannelData = handler;
    },
    close() {
      closed = true;
      onChannelData = undefined;
      inner.close();
      receiver.close();
      try {
        socket.close();
      } catch {
        // already closed
      }
    },
  };
}

/**
 * A stream transport over a connected TCP or TLS socket, which it takes over (closing the
 * transport destroys the socket). STUN messages and ChannelData share the stream; StreamFramer
 * splits them.
 * @see RFC 8656 §12.5; RFC 8489 §6.2.2
 */
export function streamTransport(socket: net.Socket, kind: 'tcp' | 'tls'): TurnTransport {
  const framer = new StreamFramer();
  let handler: ((bytes: Uint8Array) => void) | undefined;
  let closeHandler: ((error: Error) => void) | undefined;
  let ended: Error | undefined;
  let closed = false;
  const end = (error: Error): void => {
    if (ended || closed) return;
    ended = error;
    socket.destroy();
    closeHandler?.(error);
  };
  socket.setNoDelay(true);
  socket.on('data', (chunk: Buffer) => {
    if (closed || ended) return;
    let frames: Uint8Array[];
    try {
      frames = framer.push(chunk);
    } catch (error) {
      // A stream that lost its framing cannot be resynchronised: everything after is garbage.
      end(new NatpunchError('ERR_TURN', `TURN over ${kind.toUpperCase()}: ${(error as Error).message}`, { cause: error }));
      return;
    }
    for (const frame of frames) {
      if (closed || ended) return;
      handler?.(frame);
    }
  });
  socket.on('error', (error) => end(new NatpunchError('ERR_TURN', `TURN over ${kind.toUpperCase()}: ${error.message}`, { cause: error })));
  socket.on('close', () => end(new NatpunchError('ERR_TURN', `TURN over ${kind.toUpperCase()}: the server closed the connection`)));
  return {
    kind,
    send(bytes) {
      if (closed || ended) return;
      socket.write(bytes);
    },
    onReceive(h) {
      handler = h;
    },
    onClose(h) {
      closeHandler = h;
      if (ended) h(ended);
    },
    close() {
      if (closed) return;
      closed = true;
      socket.end();
      // end() waits for the server's FIN; destroy after a grace period so no socket lingers.
      socket.setTimeout(1000, () => socket.destroy());
    },
  };
}

export interface StreamConnectOptions {
  localAddress?: string;
  localPort?: number;
  signal?: AbortSignal;
  /** Give up connecting after this many ms (default 10 s). */
  timeoutMs?: number;
}

const DEFAULT_CONNECT_TIMEOUT = 10_000;

/** Wait for `event` on a freshly created socket, honouring timeout and signal; destroys it on failure. */
function connected<S extends net.Socket>(socket: S, event: 'connect' | 'secureConnect', to: TransportAddress, kind: string, options: StreamConnectOptions): Promise<S> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new TransactionTimeoutError(`TURN over ${kind}: connect to ${formatAddress(to)} timed out after ${options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT} ms`)), options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT);
    const onAbort = (): void => done(new AbortedError(`TURN over ${kind}: connect to ${formatAddress(to)} aborted`, { cause: options.signal?.reason }));
    const onError = (error: Error): void => done(new NatpunchError('ERR_TURN', `TURN over ${kind}: connect to ${formatAddress(to)}: ${error.message}`, { cause: error }));
    const done = (error?: Error): void => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      socket.off(event, onConnect);
      if (error) {
        socket.destroy();
        reject(error);
      } else resolve(socket);
    };
    const onConnect = (): void => done();
    if (options.signal?.aborted) {
      onAbort();
      return;
    }
    socket.once(event, onConnect);
    socket.once('error', onError);
    options.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function connectTcp(server: TransportAddress, kind: string, options: StreamConnectOptions): Promise<net.Socket> {
  const socket = net.connect({ host: server.address, port: server.port, localAddress: options.localAddress, localPort: options.localPort });
  return connected(socket, 'connect', server, kind, options);
}

/** Connect to a TURN server over TCP. @see RFC 8656 §3.1 */
export async function connectTcpTransport(server: TransportAddress, options: StreamConnectOptions = {}): Promise<TurnTransport> {
  return streamTransport(await connectTcp(server, 'TCP', options), 'tcp');
}

/**
 * Connect to a TURN server over TLS. `tlsOptions` go to `tls.connect` (`servername`, `ca`,
 * `rejectUnauthorized`, …); the certificate is verified unless they say otherwise. The TCP
 * connection is made first (so `localPort` can pin its port), then TLS runs over it.
 * @see RFC 8656 §3.1
 */
export async function connectTlsTransport(server: TransportAddress, options: StreamConnectOptions & { tls?: tls.ConnectionOptions } = {}): Promise<TurnTransport> {
  const socket = await connectTcp(server, 'TLS', options);
  // `host` names what the certificate must match unless `tls.servername` says otherwise.
  const secure = tls.connect({ host: server.address, ...options.tls, socket });
  return streamTransport(await connected(secure, 'secureConnect', server, 'TLS', options), 'tls');
}
