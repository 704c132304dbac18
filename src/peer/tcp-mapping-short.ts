/**
 * A TCP mapping learnt from a short connection, for when a kept one (tcp-mapping.ts) cannot be
 * held: a server or middlebox that closes idle TCP connections sooner than the keepalive.
 *
 * Connect from a freshly bound port L to the STUN/TCP endpoint, one Binding (its
 * XOR-MAPPED-ADDRESS is L's mapping, RFC 8489 §6.2.2), close, and punch from L at once: Hopper's
 * scheme (issue 4, "TCP mapping"), where the broker only records the source of the connection and
 * lets go. An endpoint-independent-mapping NAT (RFC 5382 REQ-1) gives L's next connections the same
 * public port, and the closed connection's TIME-WAIT is on the (L, server) 4-tuple, not on the
 * (L, peer) ones the punch uses. The bind before connect is what makes libuv set SO_REUSEADDR,
 * so the punching connects may bind L again. Never listen() on L.
 */
import { debuglog } from 'node:util';
import { formatAddress, type TransportAddress } from '../wire/index.js';
import { connectAndLearn } from './tcp-mapping.js';

const debug = debuglog('natpunch:tcp-mapping');

/** Short: it is on the path of signing an intent or an accept. */
export const SHORT_TCP_MAPPING_TIMEOUT_MS = 3_000;

export interface ShortTcpMapping {
  /** L: the local port the (now closed) connection left from, to punch from. */
  localPort: number;
  /** The NAT's public endpoint for L, as the STUN server saw it. */
  mapped: TransportAddress;
}

export interface ShortTcpMappingOptions {
  localAddress?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** One Binding over a connection from a new port L, then the connection is closed; L is free to reuse. */
export async function learnShortTcpMapping(server: TransportAddress, options: ShortTcpMappingOptions = {}): Promise<ShortTcpMapping> {
  const { client, mapped } = await connectAndLearn(server, { localAddress: options.localAddress, timeoutMs: options.timeoutMs ?? SHORT_TCP_MAPPING_TIMEOUT_MS }, options.signal);
  const localPort = client.socket.localPort!;
  // An orderly close (FIN, not RST): this side's TIME-WAIT holds only the (L, server) 4-tuple.
  client.socket.destroySoon();
  debug('short connection from port %d: mapped %s', localPort, formatAddress(mapped));
  return { localPort, mapped };
}
