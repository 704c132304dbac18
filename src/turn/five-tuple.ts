/**
 * The client side of an allocation: the 5-tuple (client address and port, server address and
 * port, transport) that names it, and how to send to that client. The STUN listener builds one
 * for each message it hands the TURN server.
 * @see RFC 8656 §2 (5-tuple), §3.1
 */

import type { TransportAddress } from '../wire/index.js';

export type ClientTransportKind = 'udp' | 'tcp' | 'tls';

export interface TurnClientSide {
  readonly transport: ClientTransportKind;
  /** Where the client's messages arrived: the server's listening address. */
  readonly local: TransportAddress;
  /** The client's (server-reflexive) address. */
  readonly remote: TransportAddress;
  /** Sends one message (or the parts of one, gathered without copying) to the client. */
  send(bytes: Uint8Array | readonly Uint8Array[]): void;
}

/** The 5-tuple as a map key. */
export function fiveTupleKey(client: Pick<TurnClientSide, 'transport' | 'local' | 'remote'>): string {
  return `${client.transport}|${client.remote.address}|${client.remote.port}|${client.local.address}|${client.local.port}`;
}
