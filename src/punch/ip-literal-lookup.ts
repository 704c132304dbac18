/**
 * A `lookup` for node:dgram sockets that only ever see IP literals: the address as given, with
 * no DNS lookup (and no nextTick) per send. node:dgram resolves every destination, even
 * `127.0.0.1`, through `dns.lookup` unless told otherwise; on a stream's hot path that is a
 * callback per datagram for nothing. Names are not resolved: a caller with a host name
 * resolves it first (src/peer/relay.ts).
 */
import type { SocketOptions } from 'node:dgram';

export function ipLiteralLookup(family: 4 | 6): NonNullable<SocketOptions['lookup']> {
  return (address, _options, callback) => (callback as (error: null, address: string, family: number) => void)(null, address, family);
}
