/**
 * Which peers a TURN allocation may reach. A relay sends wherever XOR-PEER-ADDRESS points, from
 * inside the operator's network, so without a policy any client with credentials can talk to the
 * server's loopback services, its LAN and its cloud metadata endpoint (RFC 8656 §21.3). The server
 * asks `check` before installing a permission or channel (CreatePermission, ChannelBind) and
 * answers a refusal with 403 (Forbidden).
 *
 * Denied by default: the special-purpose ranges of RFC 6890's registries that are not the public
 * internet (DEFAULT_DENIED_RANGES), and always the server's own addresses. `--relay-allow CIDR`
 * opens a range, `--relay-deny CIDR` closes one; the most specific of those rules decides, a deny
 * winning a tie (coturn lets allowed-peer-ip win; we prefer the safe side).
 *
 * The bypasses this closes (coturn CVE-2020-26262: 0.0.0.0 and :: reach loopback; CVE-2026-27624
 * and coturn PR #1945: ::ffff:127.0.0.1 and other IPv4-in-IPv6 spellings dodge an IPv4 range):
 * addresses are judged as bytes, every IPv6 form that carries an IPv4 address is unwrapped, and the
 * embedded address must pass the IPv4 rules too (see `embeddedIpv4`). An allow applies inside the
 * embeddings as well: allowing 127.0.0.0/8 allows ::ffff:127.0.0.1, the same destination.
 */

import { UsageError } from '../errors.js';
import { cidrContains, formatIp16, isIpv4Mapped, parseCidr, parseIp16, toIp16, type Cidr, type Ip16 } from './cidr.js';

export type PeerAddressVerdict = { ok: true } | { ok: false; reason: string };

export interface PeerAddressPolicyOptions {
  /** CIDRs to open (`--relay-allow`, repeatable); a bare address is a /32 or /128. Default none. */
  allow?: readonly string[];
  /** CIDRs to close besides the defaults (`--relay-deny`, repeatable). Default none. */
  deny?: readonly string[];
  /**
   * The server's own IPs: never a valid peer, even inside an allowed range, since relaying to
   * itself reaches its own listeners from a trusted source address. A server listening on a
   * wildcard address should list its interfaces' addresses (os.networkInterfaces()). Default none.
   */
  serverAddresses?: readonly string[];
}

/** A special-purpose range refused unless allowed. `name` reads after "is". */
export interface SpecialRange {
  readonly range: string;
  readonly name: string;
  readonly see: string;
}

/**
 * The ranges refused by default, most specific first so a refusal names the narrowest one.
 * Not here on purpose: the documentation TEST-NETs 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24
 * (RFC 5737) and 2001:db8::/32 (RFC 3849). Nothing routes them on the internet, so refusing them
 * protects nothing, and natpunch's lab uses 203.0.113.0/24 as its "public internet".
 */
export const DEFAULT_DENIED_RANGES: readonly SpecialRange[] = sortMostSpecificFirst([
  { range: '0.0.0.0/8', name: 'unspecified, "this network"', see: 'RFC 1122 §3.2.1.3, RFC 6890 §2.2.2' },
  { range: '127.0.0.0/8', name: 'loopback', see: 'RFC 1122 §3.2.1.3' },
  { range: '10.0.0.0/8', name: 'private', see: 'RFC 1918 §3' },
  { range: '172.16.0.0/12', name: 'private', see: 'RFC 1918 §3' },
  { range: '192.168.0.0/16', name: 'private', see: 'RFC 1918 §3' },
  { range: '100.64.0.0/10', name: 'CGNAT shared address space', see: 'RFC 6598' },
  { range: '169.254.0.0/16', name: 'link-local', see: 'RFC 3927' },
  { range: '224.0.0.0/4', name: 'multicast', see: 'RFC 5771' },
  { range: '240.0.0.0/4', name: 'reserved', see: 'RFC 1112 §4, RFC 6890 §2.2.2' },
  { range: '255.255.255.255/32', name: 'limited broadcast', see: 'RFC 919 §7, RFC 6890 §2.2.2' },
  { range: '192.0.0.0/24', name: 'IETF protocol assignments', see: 'RFC 6890 §2.2.2' },
  { range: '198.18.0.0/15', name: 'benchmarking', see: 'RFC 2544 §C.2.2' },
  { range: '::/128', name: 'unspecified', see: 'RFC 4291 §2.5.2' },
  { range: '::1/128', name: 'loopback', see: 'RFC 4291 §2.5.3' },
  { range: 'fc00::/7', name: 'unique local (ULA)', see: 'RFC 4193' },
  { range: 'fe80::/10', name: 'link-local', see: 'RFC 4291 §2.5.6' },
  { range: 'fec0::/10', name: 'site-local (deprecated)', see: 'RFC 3879' },
  { range: 'ff00::/8', name: 'multicast', see: 'RFC 4291 §2.7' },
  { range: '64:ff9b:1::/48', name: 'local-use NAT64', see: 'RFC 8215' },
  { range: '100::/64', name: 'discard-only', see: 'RFC 6666' },
]);

function sortMostSpecificFirst(ranges: SpecialRange[]): readonly SpecialRange[] {
  return ranges.map((r) => ({ r, c: parseCidr(r.range) })).sort((a, b) => b.c.bits - a.c.bits).map(({ r }) => Object.freeze(r));
}

const DEFAULT_DENY: ReadonlyArray<{ cidr: Cidr; name: string }> = DEFAULT_DENIED_RANGES.map((r) => ({ cidr: parseCidr(r.range), name: r.name }));

/** An IPv4 address carried inside an IPv6 one, and how (for the refusal's wording). */
export interface EmbeddedIpv4 {
  /** The IPv4 address as 16 bytes (::ffff:a.b.c.d). */
  ipv4: Ip16;
  /** "as its 6to4 router (RFC 3056 §2)" */
  how: string;
}

/**
 * The IPv4 addresses an IPv6 address carries where the network may deliver to them: sending to
 * the IPv6 address sends (through a tunnel or translator) to the IPv4 one.
 * - IPv4-compatible ::a.b.c.d, ::/96 (RFC 4291 §2.5.5.1, deprecated, still routed by some stacks
 *   through automatic tunnels): the last 32 bits. Not :: and ::1, which are IPv6's own
 *   unspecified and loopback (§2.5.2, §2.5.3) and judged as such.
 * - IPv4-translated ::ffff:0:a.b.c.d, ::ffff:0:0:0/96 (RFC 2765 §2.1, SIIT): the last 32 bits.
 * - 6to4 2002:V4ADDR::/48 in 2002::/16 (RFC 3056 §2): bits 16-47 are the site's IPv4 router.
 * - NAT64 well-known prefix 64:ff9b::/96 (RFC 6052 §2.1, §2.2): the last 32 bits; RFC 6052 §3.1
 *   says it must not carry non-global IPv4, which is what this refuses.
 * - Teredo 2001::/32 (RFC 4380 §4): bits 32-63 are the Teredo server's IPv4; the client's mapped
 *   IPv4 is the last 32 bits XOR 0xffffffff ("obfuscated"). Both are judged.
 * The IPv4-mapped form ::ffff:0:0/96 (RFC 4291 §2.5.5.2) is not listed: it is how this module
 * spells IPv4, so such an address is judged as IPv4 directly. The local-use NAT64 prefix
 * 64:ff9b:1::/48 (RFC 8215) places the IPv4 address where its operator chooses, so it is denied
 * as a whole instead.
 */
export function embeddedIpv4(address: Ip16): EmbeddedIpv4[] {
  const zeros = (from: number, to: number): boolean => address.subarray(from, to).every((b) => b === 0);
  const v4 = (at: number, xor = 0): Ip16 => toIp16(address.subarray(at, at + 4).map((b) => b ^ xor));
  const out: EmbeddedIpv4[] = [];
  if (zeros(0, 12) && !(zeros(12, 15) && address[15]! <= 1)) {
    out.push({ ipv4: v4(12), how: 'as an IPv4-compatible address (RFC 4291 §2.5.5.1)' });
  }
  if (zeros(0, 8) && address[8] === 0xff && address[9] === 0xff && zeros(10, 12)) {
    out.push({ ipv4: v4(12), how: 'as an IPv4-translated address (RFC 2765 §2.1)' });
  }
  if (address[0] === 0x20 && address[1] === 0x02) {
    out.push({ ipv4: v4(2), how: 'as its 6to4 router (RFC 3056 §2)' });
  }
  if (address[0] === 0x00 && address[1] === 0x64 && address[2] === 0xff && address[3] === 0x9b && zeros(4, 12)) {
    out.push({ ipv4: v4(12), how: 'through the NAT64 well-known prefix (RFC 6052 §2.2)' });
  }
  if (address[0] === 0x20 && address[1] === 0x01 && zeros(2, 4)) {
    out.push({ ipv4: v4(4), how: 'as its Teredo server (RFC 4380 §4)' });
    out.push({ ipv4: v4(12, 0xff), how: 'as its Teredo client, obfuscated (RFC 4380 §4)' });
  }
  return out;
}

/** One destination to judge: the address itself or an IPv4 address inside it. */
interface Destination {
  bytes: Ip16;
  /** The start of the refusal, ending before what the destination is: "127.0.0.1 is". */
  subject: string;
}

export class PeerAddressPolicy {
  readonly #rules: ReadonlyArray<{ cidr: Cidr; allow: boolean }>;
  readonly #server: ReadonlySet<string>;

  /** @throws UsageError naming the option and the bad text, e.g. "--relay-allow 10.0.0.0/33: ..." */
  constructor(options: PeerAddressPolicyOptions = {}) {
    // Deny first so that, sorted stably by specificity, a deny wins a tie with an equal allow.
    this.#rules = [
      ...(options.deny ?? []).map((text) => ({ cidr: parseCidr(text, '--relay-deny'), allow: false })),
      ...(options.allow ?? []).map((text) => ({ cidr: parseCidr(text, '--relay-allow'), allow: true })),
    ].sort((a, b) => b.cidr.bits - a.cidr.bits);
    this.#server = new Set(
      (options.serverAddresses ?? []).map((text) => {
        const bytes = parseIp16(text);
        if (bytes === undefined) throw new UsageError(`server address ${JSON.stringify(String(text))} is not an IP address`);
        return key(bytes);
      }),
    );
  }

  /**
   * Whether a peer at `ip` (IPv4 or IPv6 text, an IPv6 zone id allowed) may be relayed to. A
   * refusal's reason names the range and how to open it. Never throws.
   */
  check(ip: string): PeerAddressVerdict {
    const bytes = parseIp16(ip);
    if (bytes === undefined) return { ok: false, reason: `${JSON.stringify(String(ip))} is not an IP address` };
    return this.#judge(bytes, ip);
  }

  /** `check` for the 4 or 16 bytes of a decoded XOR-PEER-ADDRESS. Never throws. */
  checkBytes(bytes: Uint8Array): PeerAddressVerdict {
    if (bytes.length !== 4 && bytes.length !== 16) return { ok: false, reason: `an IP address has 4 or 16 bytes, got ${bytes.length}` };
    const address = toIp16(bytes);
    return this.#judge(address, formatIp16(address));
  }

  #judge(address: Ip16, shown: string): PeerAddressVerdict {
    const destinations = this.#destinations(address, shown);
    for (const d of destinations) {
      if (this.#server.has(key(d.bytes))) {
        return { ok: false, reason: `${d.subject} this server's own address; a relay never sends to itself, whatever --relay-allow says` };
      }
    }
    for (const d of destinations) {
      const verdict = this.#judgeOne(d);
      if (!verdict.ok) return verdict;
    }
    return { ok: true };
  }

  #destinations(address: Ip16, shown: string): Destination[] {
    if (isIpv4Mapped(address)) {
      const v4 = formatIp16(address);
      // "::ffff:127.0.0.1" shown as given, then the IPv4 address it names.
      const subject = shown === v4 ? `${v4} is` : `${shown} is IPv4-mapped ${v4} (RFC 4291 §2.5.5.2), which is`;
      return [{ bytes: address, subject }];
    }
    return [
      { bytes: address, subject: `${shown} is` },
      ...embeddedIpv4(address).map((e) => ({ bytes: e.ipv4, subject: `${shown} embeds ${formatIp16(e.ipv4)} ${e.how}, which is` })),
    ];
  }

  #judgeOne(d: Destination): PeerAddressVerdict {
    const rule = this.#rules.find((r) => cidrContains(r.cidr, d.bytes));
    if (rule !== undefined) return rule.allow ? { ok: true } : { ok: false, reason: `${d.subject} in --relay-deny ${rule.cidr.text}` };
    const special = DEFAULT_DENY.find((s) => cidrContains(s.cidr, d.bytes));
    if (special === undefined) return { ok: true };
    return { ok: false, reason: `${d.subject} ${special.name} (${special.cidr.text}); --relay-allow ${special.cidr.text} opens it` };
  }
}

function key(bytes: Ip16): string {
  return Buffer.from(bytes).toString('hex');
}
