/**
 * Transport addresses (IP + port) as the STUN attributes carry them, with canonical text forms.
 *
 * Text is canonical so that two spellings of one address compare equal as strings: IPv4 as
 * dotted decimal, IPv6 lower-case with the longest run of zero groups compressed (RFC 5952 §4),
 * in the same form libuv's `inet_ntop` gives Node's `rinfo.address` (so `::ffff:1.2.3.4`
 * keeps its dotted tail). Conversions go through bytes, never string heuristics (STYLE §7).
 */

import { isIPv4, isIPv6 } from 'node:net';
import { UsageError } from '../errors.js';

/** An IP address and port. `address` is in canonical text form. */
export interface TransportAddress {
  /** IP version: 4 or 6. */
  family: 4 | 6;
  /** The IP address, textual. */
  address: string;
  /** The port. */
  port: number;
}

/** "1.2.3.4:5" or "[::1]:5". */
export function formatAddress(a: TransportAddress): string {
  return a.family === 6 ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/**
 * Parses "1.2.3.4:5", "[v6]:5", or a bare IP ("1.2.3.4", "::1", "[::1]") with `defaultPort`.
 * Host names are refused: this layer does no I/O, so resolve them first (see `splitHostPort`).
 * @throws UsageError (code 'ERR_USAGE') saying what was wrong with the text
 */
export function parseAddress(text: string, defaultPort?: number): TransportAddress {
  const { host, port } = splitHostPort(text, defaultPort);
  if (isIPv4(host)) return { family: 4, address: ipFromBytes(ipToBytes(host)), port };
  if (isIPv6(host) && !host.includes('%')) return { family: 6, address: ipFromBytes(ipToBytes(host)), port };
  if (host.includes('%')) {
    throw new UsageError(`address "${text}": IPv6 zone ids ("%${host.split('%')[1]}") cannot be carried in STUN; drop the zone`);
  }
  throw new UsageError(`address "${text}": "${host}" is not an IP address; resolve host names before parsing`);
}

/**
 * Splits "host:port", "[v6]:port", "host" or a bare IPv6 literal into its parts without judging
 * the host (which may be a name to resolve). The port must be a decimal integer 0-65535; it
 * falls back to `defaultPort` when absent.
 * @throws UsageError when the port is missing or malformed
 */
export function splitHostPort(text: string, defaultPort?: number): { host: string; port: number } {
  if (typeof text !== 'string' || text.length === 0) throw new UsageError('address: expected "host:port", got an empty string');
  let host: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) throw new UsageError(`address "${text}": "[" without a closing "]"`);
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) throw new UsageError(`address "${text}": expected ":port" after "]", got "${rest}"`);
      portText = rest.slice(1);
    }
  } else {
    const colons = text.split(':').length - 1;
    if (colons === 1) {
      const at = text.indexOf(':');
      host = text.slice(0, at);
      portText = text.slice(at + 1);
    } else {
      // No colon, or a bare IPv6 literal whose colons are not a port separator.
      host = text;
    }
  }
  if (host === '') throw new UsageError(`address "${text}": the host is empty`);
  const port = portText === undefined ? defaultPort : parsePort(portText, text);
  if (port === undefined) throw new UsageError(`address "${text}": no port given and no default port; write "${text}:PORT"`);
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new UsageError(`address "${text}": port ${port} is out of range 0-65535`);
  }
  return { host, port };
}

function parsePort(portText: string, text: string): number {
  if (!/^[0-9]{1,5}$/.test(portText)) throw new UsageError(`address "${text}": port "${portText}" is not a decimal number`);
  return Number(portText);
}

/**
 * The 4 or 16 bytes of an IP address in text form.
 * @throws UsageError when `ip` is not an IPv4 or IPv6 literal
 */
export function ipToBytes(ip: string): Uint8Array {
  if (isIPv4(ip)) return Uint8Array.from(ip.split('.').map(Number));
  if (!isIPv6(ip) || ip.includes('%')) throw new UsageError(`"${ip}" is not an IPv4 or IPv6 address`);
  let head = ip;
  let tail = '';
  const gap = ip.indexOf('::');
  if (gap >= 0) {
    head = ip.slice(0, gap);
    tail = ip.slice(gap + 2);
  }
  const words = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const piece of part.split(':')) {
      if (piece.includes('.')) {
        const [a = 0, b = 0, c = 0, d = 0] = piece.split('.').map(Number);
        out.push((a << 8) | b, (c << 8) | d);
      } else {
        out.push(parseInt(piece, 16));
      }
    }
    return out;
  };
  const first = words(head);
  const last = words(tail);
  const all = gap >= 0 ? [...first, ...new Array<number>(8 - first.length - last.length).fill(0), ...last] : first;
  const bytes = new Uint8Array(16);
  all.forEach((w, i) => {
    bytes[2 * i] = w >> 8;
    bytes[2 * i + 1] = w & 0xff;
  });
  return bytes;
}

/**
 * Canonical text of a 4- or 16-byte address: RFC 5952 compression, with the
 * IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) forms inet_ntop uses.
 */
export function ipFromBytes(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) throw new UsageError(`an IP address has 4 or 16 bytes, got ${bytes.length}`);
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((bytes[i]! << 8) | bytes[i + 1]!);
  // Longest run of zero words (the first if tied); runs of one are not compressed (RFC 5952 §4.2.2).
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestLength < 2) bestStart = -1;
  const dotted = `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  if (bestStart === 0 && (bestLength === 6 || (bestLength === 5 && words[5] === 0xffff))) {
    return bestLength === 6 ? `::${dotted}` : `::ffff:${dotted}`;
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      out += '::';
      i += bestLength - 1;
      continue;
    }
    if (out !== '' && !out.endsWith(':')) out += ':';
    out += words[i]!.toString(16);
  }
  return out;
}

/** "::ffff:1.2.3.4" -> "1.2.3.4"; other addresses in canonical form; undefined if not an IP. */
export function unmappedIp(ip: string): string | undefined {
  try {
    const bytes = ipToBytes(ip);
    const mapped = bytes.length === 16 && bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
    return ipFromBytes(mapped ? bytes.subarray(12) : bytes);
  } catch {
    return undefined;
  }
}
