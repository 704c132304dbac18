import { isIPv6 } from 'node:net';
import { ipToBytes } from '../wire/index.js';

/**
 * Which IPv6 interface addresses a peer gathers as host candidates, and in what order.
 *
 * RFC 8445 §5.1.1.1 excludes loopback addresses, IPv4-compatible IPv6 addresses (::/96,
 * deprecated by RFC 4291 §2.5.5.1), site-local ones (fec0::/10, deprecated by RFC 3879), and
 * says IPv4-mapped ones (::ffff:0:0/96) SHOULD NOT be included. natpunch also leaves out
 * link-local addresses (fe80::/10): they only mean something together with an interface (a zone
 * id the other peer cannot know), and signing them would hand the other side a fingerprint of
 * this host's link (RFC 8445 §5.1.1.1 forbids them once privacy addresses are in use, the
 * common case). Multicast (ff00::/8) and the unspecified address are never an endpoint.
 *
 * What is left is ordered by RFC 6724 §2.1's default policy table, highest precedence first:
 * native global addresses (precedence 40), then 6to4 (2002::/16, 30), Teredo (2001::/32, 5),
 * and unique-local addresses (fc00::/7, 3: like RFC 1918 space, they reach only their own
 * site). Interface order breaks ties. The order becomes the local preference of the candidates
 * (candidate.ts prioritise), so the other side checks the most widely reachable address first.
 * At most MAX_IPV6_HOST_CANDIDATES are kept: each is a pair the other side checks, and the
 * rendezvous bounds a signed offer to 16 candidates in all.
 * @see RFC 8445 §5.1.1.1, RFC 6724 §2.1, RFC 4291 §2.5
 */
export const MAX_IPV6_HOST_CANDIDATES = 4;

/** RFC 6724 §2.1 precedence of a gatherable address, or null when it is not gathered at all. */
export function ipv6HostPrecedence(address: string): number | null {
  if (!isIPv6(address) || address.includes('%')) return null;
  const b = ipToBytes(address);
  const zeros = (n: number): boolean => b.subarray(0, n).every((x) => x === 0);
  // ::/96 covers the unspecified address, loopback ::1 and IPv4-compatible addresses.
  if (zeros(12)) return null;
  // ::ffff:0:0/96, IPv4-mapped.
  if (zeros(10) && b[10] === 0xff && b[11] === 0xff) return null;
  if (b[0] === 0xff) return null; // multicast
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return null; // link-local fe80::/10
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0xc0) return null; // site-local fec0::/10
  if ((b[0]! & 0xfe) === 0xfc) return 3; // unique-local fc00::/7
  if (b[0] === 0x20 && b[1] === 0x02) return 30; // 6to4 2002::/16
  if (b[0] === 0x20 && b[1] === 0x01 && b[2] === 0 && b[3] === 0) return 5; // Teredo 2001::/32
  return 40;
}

/** The IPv6 host addresses to gather from `addresses` (interface order), best first, without repeats. */
export function ipv6HostAddresses(addresses: readonly string[]): string[] {
  const ranked = [...new Set(addresses)]
    .map((address, order) => ({ address, order, precedence: ipv6HostPrecedence(address) }))
    .filter((a): a is { address: string; order: number; precedence: number } => a.precedence !== null);
  ranked.sort((x, y) => y.precedence - x.precedence || x.order - y.order);
  return ranked.slice(0, MAX_IPV6_HOST_CANDIDATES).map((a) => a.address);
}
