/**
 * IP addresses and CIDR ranges in one 128-bit space, for the TURN server's peer-address policy
 * (src/turn/peer-policy.ts).
 *
 * Every address is 16 bytes; IPv4 a.b.c.d is the IPv4-mapped ::ffff:a.b.c.d (RFC 4291 §2.5.5.2),
 * so `1.2.3.4` and `::ffff:1.2.3.4` are one value and no spelling of an address can slip past a
 * range written in the other. Text goes through `node:net`'s strict literal check and
 * src/wire/address.ts's byte conversion, never through string heuristics (STYLE §7): IPv4 is a
 * dotted quad of decimal 0-255 without leading zeros, so the inet_aton spellings "127.1",
 * "0x7f.0.0.1" and "0177.0.0.1" are not addresses at all.
 */

import { isIPv4, isIPv6 } from 'node:net';
import { UsageError } from '../errors.js';
import { ipFromBytes, ipToBytes } from '../wire/address.js';

/** An IP address as 16 bytes (IPv4 as ::ffff:a.b.c.d). */
export type Ip16 = Uint8Array;

/**
 * A range of addresses. An IPv4 range covers only IPv4 (mapped) addresses and an IPv6 range
 * only the others, so `::/0` means "all of IPv6" and never reaches IPv4 through the mapped block
 * inside it; an IPv6-written range wholly inside ::ffff:0:0/96 is an IPv4 range.
 */
export interface Cidr {
  readonly family: 4 | 6;
  /** The network: 16 bytes with the host bits zero. */
  readonly bytes: Ip16;
  /** Prefix length over all 128 bits: an IPv4 /8 is 104 here. */
  readonly bits: number;
  /** Canonical text: "10.0.0.0/8", "fe80::/10". */
  readonly text: string;
}

/** Whether 16 bytes are an IPv4-mapped address ::ffff:0:0/96, i.e. IPv4 in this module. */
export function isIpv4Mapped(bytes: Ip16): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

/** The 16-byte form of a 4-byte (IPv4) or 16-byte address. */
export function toIp16(bytes: Uint8Array): Ip16 {
  if (bytes.length === 16) return Uint8Array.from(bytes);
  if (bytes.length !== 4) throw new UsageError(`an IP address has 4 or 16 bytes, got ${bytes.length}`);
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(bytes, 12);
  return out;
}

/**
 * The 16 bytes of an IP literal, or undefined when `text` is not one. An IPv6 zone id
 * ("fe80::1%eth0") is dropped: the zone picks an interface, the address is what gets judged.
 */
export function parseIp16(text: string): Ip16 | undefined {
  if (typeof text !== 'string') return undefined;
  if (isIPv4(text)) return toIp16(ipToBytes(text));
  if (!isIPv6(text)) return undefined;
  const zone = text.indexOf('%');
  const bare = zone >= 0 ? text.slice(0, zone) : text;
  // node:net accepts some spellings (e.g. a zone on a dotted tail) that ipToBytes then re-checks.
  if (!isIPv6(bare)) return undefined;
  return ipToBytes(bare);
}

/** Canonical text of 16 bytes: IPv4 (mapped) addresses as a dotted quad. */
export function formatIp16(bytes: Ip16): string {
  return isIpv4Mapped(bytes) ? ipFromBytes(bytes.subarray(12)) : ipFromBytes(bytes);
}

/** Whether `address` (16 bytes) is in `range`; an address of the other family never is. */
export function cidrContains(range: Cidr, address: Ip16): boolean {
  if ((isIpv4Mapped(address) ? 4 : 6) !== range.family) return false;
  const whole = range.bits >> 3;
  for (let i = 0; i < whole; i++) if (address[i] !== range.bytes[i]) return false;
  const rest = range.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (address[whole]! & mask) === range.bytes[whole];
}

/**
 * Reads "10.0.0.0/8", "fc00::/7", or a bare address as a one-address range (/32 or /128).
 * `option` names where the text came from, for the message ("--relay-allow 10.0.0.0/33: ...").
 * @throws UsageError saying what is wrong: not an address, a bad or too long prefix length, a
 *   zone id, or host bits set after the prefix (a typo that would open more than meant)
 */
export function parseCidr(text: string, option = 'CIDR'): Cidr {
  if (typeof text !== 'string' || text.trim() === '') {
    throw new UsageError(`${option}: expected a range such as 10.0.0.0/8 or fc00::/7, got an empty string`);
  }
  const where = `${option} ${text}`;
  const parts = text.split('/');
  if (parts.length > 2) throw new UsageError(`${where}: more than one "/"; write ADDRESS/PREFIX-LENGTH`);
  const [addressText = '', prefixText] = parts;
  if (addressText.includes('%')) throw new UsageError(`${where}: a range cannot carry an IPv6 zone id ("%${addressText.split('%')[1]}"); drop it`);
  const written4 = isIPv4(addressText);
  if (!written4 && !isIPv6(addressText)) {
    throw new UsageError(`${where}: "${addressText}" is not an IP address (IPv4 is four decimal numbers 0-255 without leading zeros)`);
  }
  const max = written4 ? 32 : 128;
  let length = max;
  if (prefixText !== undefined) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) throw new UsageError(`${where}: prefix length "${prefixText}" is not a decimal number without leading zeros`);
    length = Number(prefixText);
    if (length > max) throw new UsageError(`${where}: prefix length ${length} is over ${max} for IPv${written4 ? 4 : 6}`);
  }
  const bytes = parseIp16(addressText)!;
  const bits = written4 ? 96 + length : length;
  const network = maskTo(bytes, bits);
  if (!network.every((b, i) => b === bytes[i])) {
    const fixed = `${written4 ? ipFromBytes(network.subarray(12)) : ipFromBytes(network)}/${length}`;
    throw new UsageError(`${where}: address bits are set past the /${length} prefix; the range is ${fixed} (or write ${addressText}/${max} for the one address)`);
  }
  const family = bits >= 96 && isIpv4Mapped(network) ? 4 : 6;
  const canonical = family === 4 ? `${ipFromBytes(network.subarray(12))}/${bits - 96}` : `${ipFromBytes(network)}/${bits}`;
  return { family, bytes: network, bits, text: canonical };
}

/** A copy of `bytes` with every bit after the first `bits` cleared. */
function maskTo(bytes: Ip16, bits: number): Ip16 {
  const out = Uint8Array.from(bytes);
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - 8 * i));
    out[i] = out[i]! & (0xff << (8 - keep)) & 0xff;
  }
  return out;
}
