/**
 * Whether a gateway's external address is one the internet can reach. When it is private or
 * shared (RFC 1918, RFC 6598 carrier-grade NAT space), another NAT sits in front of the gateway
 * (double NAT): the mapping works only up to that NAT and reaches nobody outside, so it is no
 * candidate worth signing. Judged from parsed bytes, never string prefixes (STYLE §7).
 * Documentation ranges (RFC 5737) count as public: the lab's "internet" is built from them.
 * @see RFC 6886 §3.2 (0.0.0.0: no external address yet), RFC 6887 §11.3, RFC 6890
 */

import { cidrContains, parseCidr, parseIp16 } from '../turn/cidr.js';

/** Ranges behind which another NAT (or nothing routable) must lie. */
const NOT_PUBLIC = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16',
  '::/128', '::1/128', 'fc00::/7', 'fe80::/10',
].map((text) => parseCidr(text, 'non-public range'));

export type ExternalAddressProblem = 'unspecified' | 'not-public' | 'not-an-address';

/** undefined when `address` is a usable public address; otherwise what is wrong with it. */
export function externalAddressProblem(address: string): ExternalAddressProblem | undefined {
  const bytes = parseIp16(address);
  if (bytes === undefined) return 'not-an-address';
  if (address === '0.0.0.0' || address === '::') return 'unspecified';
  return NOT_PUBLIC.some((range) => cidrContains(range, bytes)) ? 'not-public' : undefined;
}
