/**
 * A DatagramPath over a node:dgram socket to one remote address and port.
 *
 * The socket is shared, not owned: STUN transactions, connectivity checks and keepalives use
 * the same socket (the NAT mapping belongs to it), so this path only adds a 'message' listener
 * that takes stream packets from its remote and leaves every other datagram to the other
 * listeners; `close()` removes that listener and never closes the socket.
 *
 * Plaintext use (tests, benchmarks, a trusted network). Over the internet the datagram cipher
 * wraps `send` and the handler, and the path manager demultiplexes before decryption.
 */
import type { RemoteInfo, Socket } from 'node:dgram';
import { isIP } from 'node:net';
import type { DatagramPath } from './datagram-path.js';
import { TransportError } from './errors.js';
import { isStreamPacket } from './packet.js';

export interface UdpPathOptions {
  /** Bytes per datagram; 1200 fits any IPv6 path (RFC 8200 §5 MTU 1280 minus headers) and most IPv4 paths. */
  maxPayload?: number;
}

export interface UdpPath extends DatagramPath {
  readonly remote: { readonly address: string; readonly port: number };
  close(): void;
}

export const DEFAULT_UDP_MAX_PAYLOAD = 1200;

export function createUdpPath(socket: Socket, remote: { address: string; port: number }, options: UdpPathOptions = {}): UdpPath {
  if (isIP(remote.address) === 0 || !Number.isInteger(remote.port) || remote.port < 1 || remote.port > 65535) {
    throw new TransportError(`udp path: remote ${remote.address}:${remote.port}, expected an IP address and a port in 1..65535`);
  }
  const address = remote.address;
  const port = remote.port;
  const handlers: Array<(datagram: Uint8Array) => void> = [];
  const listener = (message: Buffer, from: RemoteInfo): void => {
    if (from.port !== port || from.address !== address || !isStreamPacket(message)) return;
    for (const handler of handlers) handler(message);
  };
  socket.on('message', listener);
  return {
    remote: { address, port },
    maxPayload: options.maxPayload ?? DEFAULT_UDP_MAX_PAYLOAD,
    send(datagram) {
      // No callback: dgram then reports neither synchronous nor asynchronous send errors;
      // a datagram that did not go out is a loss, which the stream already handles.
      socket.send(datagram, port, address);
    },
    onDatagram(handler) {
      handlers.push(handler);
    },
    close() {
      socket.off('message', listener);
      handlers.length = 0;
    },
  };
}
