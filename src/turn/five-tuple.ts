/**
 * The client side of an allocation: the 5-tuple (client address and port, server address and
 * port, transport) that names it, and how to send to that client. The STUN listener builds one
 * for each message it hands the TURN server.
 * @see RFC 8656 §2 (5-tuple), §3.1
 */

import type { TransportAddress } from '../wire/index.js';
import type { ForwardTable } from '../punch/udp-forward.js';

export type ClientTransportKind = 'udp' | 'tcp' | 'tls';

export interface TurnClientSide {
  readonly transport: ClientTransportKind;
  /** Where the client's messages arrived: the server's listening address. */
  readonly local: TransportAddress;
  /** The client's (server-reflexive) address. */
  readonly remote: TransportAddress;
  /** Sends one message (or the parts of one, gathered without copying) to the client. */
  send(bytes: Uint8Array | readonly Uint8Array[]): void;
  /**
   * UDP clients: sends bytes[start, end) as one datagram, copied before it returns, so the
   * relay can send a received datagram from its batch with a header written in front of it.
   */
  sendRange?(bytes: Uint8Array, start: number, end: number): void;
  /** UDP clients on a socket read in batches: lets the relay forward their ChannelData without JavaScript (fast-path.ts). */
  readonly fastPath?: UdpFastPath;
}

/** A UDP client's socket, as the relay's fast path (fast-path.ts) needs it; the STUN listener provides it. */
export interface UdpFastPath {
  /** The rules of the receiver this client's datagrams arrive on, if it has any. */
  readonly forwards: ForwardTable | undefined;
  /** The socket's fd now (undefined once closed), and whether it is an IPv6 socket. */
  outFd(): number | undefined;
  readonly ipv6Socket: boolean;
}

/** Keys already made, per client object: the relay's hot path looks its allocation up per datagram. */
const keys = new WeakMap<object, string>();

/** The 5-tuple as a map key. */
export function fiveTupleKey(client: Pick<TurnClientSide, 'transport' | 'local' | 'remote'>): string {
  let key = keys.get(client);
  if (key === undefined) keys.set(client, (key = makeKey(client)));
  return key;
}

function makeKey(client: Pick<TurnClientSide, 'transport' | 'local' | 'remote'>): string {
  return `${client.transport}|${client.remote.address}|${client.remote.port}|${client.local.address}|${client.local.port}`;
}
