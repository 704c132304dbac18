/**
 * What the rendezvous server can tell about a peer's network from what it proved at
 * registration, for metrics (docs/metrics.md). The server never sees whether a punch worked
 * (that happens between the peers), nor the peer's own RFC 5780 report (`natpunch check`
 * stays on the peer): only the STUN-proven server-reflexive address, the private endpoints the
 * peer signed, and its dial-back.
 */
import { parseAddress, unmappedIp } from '../wire/index.js';
import type { Reachability, RegisterBody } from './messages.js';

/**
 * - `no-udp`: no server-reflexive address proven (UDP blocked, or the peer claimed none);
 * - `public`: the proven address is one of the peer's own (no NAT; maybe a firewall);
 * - `open`: behind a NAT that let the server's dial-back in from another address
 *   (endpoint-independent filtering: full cone), so others can reach it unsolicited;
 * - `nat`: behind a NAT that filters (restricted or port-restricted cone, or symmetric: the
 *   server cannot tell them apart from one mapping), or dial-back is off (no --alt-address).
 */
export type NatClass = 'no-udp' | 'public' | 'open' | 'nat';

export const NAT_CLASSES: readonly NatClass[] = ['no-udp', 'public', 'open', 'nat'];

export function natClass(body: Pick<RegisterBody, 'srflx' | 'privateEndpoints'>, reachable: Reachability | undefined): NatClass {
  if (body.srflx === null) return 'no-udp';
  const ip = ipOf(body.srflx);
  if (ip !== undefined && body.privateEndpoints.some((endpoint) => ipOf(endpoint) === ip)) return 'public';
  return reachable?.udp ? 'open' : 'nat';
}

/** The IP of "ip:port" as canonical text (IPv4-mapped IPv6 as IPv4), or undefined if it does not parse. */
function ipOf(endpoint: string): string | undefined {
  try {
    const address = parseAddress(endpoint).address;
    return unmappedIp(address) ?? address;
  } catch {
    return undefined;
  }
}
