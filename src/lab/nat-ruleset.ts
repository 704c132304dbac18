/**
 * The nftables ruleset that makes a Linux namespace behave as one NAT kind.
 *
 * Linux's own NAT is a port-restricted cone (endpoint-independent mapping while the port is
 * free, address-and-port-dependent filtering through conntrack). Other behaviours are built
 * around it: a "learn" chain after source NAT records every mapping in dynamic maps, and the
 * prerouting chain uses them to admit inbound packets (full and restricted cone), to reuse a
 * mapping for new destinations (endpoint-independent mapping with random ports) and to loop
 * packets back to the router's own public mappings (hairpinning).
 *
 * @see RFC 4787 §4.1 (mapping), §4.2.1 (port assignment), §5 (filtering), §6 (hairpinning)
 */

import { LabError } from '../errors.js';
import { translatesAddresses } from './nat-kind.js';
import type { RouterPlan } from './topology.js';

/** The nft table every lab router keeps its rules, maps and named counters in. */
export const NAT_TABLE = 'natlab';
/** Loss lives on the link device, so it has a netdev table per device. */
export function lossTable(device: string): string {
  return `natlab_loss_${device}`;
}

/** Counters the lab declares in every router (nft named counters in `ip natlab`). */
export const ROUTER_COUNTERS = {
  /** Every IPv4 packet arriving on `wan`, before any NAT or filtering. */
  wanIn: 'wan-in',
  /** Every IPv4 packet leaving on `wan`, after source NAT. */
  wanOut: 'wan-out',
  /** Inbound packets from `wan` that matched no mapping and were dropped or refused. */
  unsolicited: 'unsolicited',
  /** Packets dropped by the loss emulation on this router's side of the WAN link (netdev table). */
  lost: 'lost',
} as const;

/** Ports the sequential allocator hands out, one per new flow, wrapping after this many. */
export const SEQUENTIAL_PORT_BASE = 40000;
export const SEQUENTIAL_PORT_COUNT = 1000;

const COUNTER_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;

export function validateCounterName(name: string): void {
  if (!COUNTER_NAME.test(name)) {
    throw new LabError(`lab counter: name ${JSON.stringify(name)} is not usable, expected a letter then up to 62 letters, digits, '-' or '_'`);
  }
}

/**
 * Source-NAT rules for the router's kind, as a regular chain jumped to for every new TCP/UDP
 * flow that leaves through `wan` (and, with hairpinning, for looped-back flows).
 * NAT statements are terminal; a map lookup that misses ends its rule, so the next rule runs.
 */
function sourceNatRules(router: RouterPlan): string[] {
  const wan = router.wanAddress;
  const tcpUdp = 'meta l4proto { tcp, udp }';
  // An endpoint-independent mapping is reused for every destination. @see RFC 4787 §4.1 REQ-1
  const reuse = `${tcpUdp} snat ip to ${wan} : ip saddr . meta l4proto . th sport map @int2ext`;
  // A new internal endpoint whose port another one already holds externally gets a fresh one,
  // so two clients never share a mapping (Linux would otherwise reuse it per destination).
  const avoidHeld = `${tcpUdp} meta l4proto . th sport @ext2int snat ip to ${wan} : 1024-65535 fully-random`;
  switch (router.kind) {
    case 'full-cone':
    case 'restricted-cone':
    case 'port-restricted':
    case 'udp-blocked':
      // Port preservation when the port is free is Linux's default. @see RFC 4787 §4.2.1 REQ-3
      return [reuse, avoidHeld, `snat ip to ${wan}`];
    case 'eim-random-port':
      return [reuse, `${tcpUdp} snat ip to ${wan} : 1024-65535 fully-random`, `snat ip to ${wan}`];
    case 'symmetric-random':
      return [`snat ip to ${wan} fully-random`];
    case 'symmetric-seq': {
      // `numgen inc … offset N` as the port would load a host-order value into a big-endian
      // register (steps of 256); a map from the counter to the port is what works.
      const entries = Array.from({ length: SEQUENTIAL_PORT_COUNT }, (_, i) => `${i} : ${SEQUENTIAL_PORT_BASE + i}`);
      return [`${tcpUdp} snat ip to ${wan} : numgen inc mod ${SEQUENTIAL_PORT_COUNT} map { ${entries.join(', ')} }`, `snat ip to ${wan}`];
    }
    case 'symmetric-firewall':
    case 'open':
      return [];
  }
}

/** Admission of inbound UDP to an existing mapping, beyond conntrack's own (port-restricted) filter. */
function inboundRules(router: RouterPlan): string[] {
  const toMapping = 'dnat ip to meta l4proto . th dport map @ext2int';
  switch (router.kind) {
    case 'full-cone':
      // Anyone may reach a mapped endpoint. @see RFC 4787 §5 (endpoint-independent filtering)
      return [`iifname "wan" meta l4proto udp ${toMapping}`];
    case 'restricted-cone':
      // Only addresses the mapping has sent to. @see RFC 4787 §5 (address-dependent filtering)
      return [`iifname "wan" meta l4proto udp ip saddr . meta l4proto . th dport @sentto ${toMapping}`];
    default:
      return [];
  }
}

function unsolicitedTcp(router: RouterPlan): string {
  const verdict = router.options.tcpUnsolicited === 'rst' ? 'reject with tcp reset' : 'drop';
  return `meta l4proto tcp counter name "${ROUTER_COUNTERS.unsolicited}" ${verdict}`;
}

function forwardRules(router: RouterPlan): string[] {
  const rules: string[] = [];
  if (router.kind === 'udp-blocked') rules.push('meta l4proto udp drop');
  if (router.kind === 'open') return rules;
  rules.push('ct state established,related accept', 'iifname "lan" accept');
  if (translatesAddresses(router.kind)) {
    rules.push('ct status dnat accept', `iifname "wan" counter name "${ROUTER_COUNTERS.unsolicited}" drop`);
  } else {
    // symmetric-firewall: a stateful filter in front of public addresses. @see RFC 3489 §5
    rules.push(`iifname "wan" ${unsolicitedTcp(router)}`, `iifname "wan" counter name "${ROUTER_COUNTERS.unsolicited}" drop`);
  }
  return rules;
}

function inputRules(router: RouterPlan): string[] {
  const rules = [
    'iifname "wan" ct state established,related accept',
    'iifname "wan" meta l4proto icmp accept',
    `iifname "wan" ${unsolicitedTcp(router)}`,
    `iifname "wan" counter name "${ROUTER_COUNTERS.unsolicited}" drop`,
  ];
  // Without hairpinning a LAN packet to the public address goes nowhere. @see RFC 4787 §6
  if (translatesAddresses(router.kind)) rules.push(`iifname "lan" ip daddr ${router.wanAddress} meta l4proto { tcp, udp } drop`);
  return rules;
}

function chain(name: string, hook: string | null, rules: readonly string[]): string {
  const head = hook === null ? '' : `    ${hook}; policy accept;\n`;
  return `  chain ${name} {\n${head}${rules.map((r) => `    ${r}\n`).join('')}  }\n`;
}

/** Map and set lifetimes follow the conntrack UDP timeout, so a mapping expires with its flows. */
function mappingTimeoutSeconds(router: RouterPlan): number {
  return router.options.udpTimeoutSeconds ?? 120;
}

/**
 * The full ruleset for one router, to be fed to `nft -f -` inside its namespace.
 * Starts by deleting the lab's tables, so loading twice is harmless.
 */
export function natRuleset(router: RouterPlan): string {
  const natted = translatesAddresses(router.kind);
  const timeout = mappingTimeoutSeconds(router);
  const lan = router.lanNetwork;
  let out = `table ip ${NAT_TABLE}\ndelete table ip ${NAT_TABLE}\n`;
  out += `table ip ${NAT_TABLE} {\n`;
  for (const name of [ROUTER_COUNTERS.wanIn, ROUTER_COUNTERS.wanOut, ROUTER_COUNTERS.unsolicited]) out += `  counter ${name} { }\n`;
  // external port -> internal endpoint; internal endpoint -> external port; who each mapping sent to.
  out += `  map ext2int { type inet_proto . inet_service : ipv4_addr . inet_service; flags dynamic, timeout; timeout ${timeout}s; }\n`;
  out += `  map int2ext { type ipv4_addr . inet_proto . inet_service : inet_service; flags dynamic, timeout; timeout ${timeout}s; }\n`;
  out += `  set sentto { type ipv4_addr . inet_proto . inet_service; flags dynamic, timeout; timeout ${timeout}s; }\n`;

  out += chain('count-in', 'type filter hook prerouting priority -310', [`iifname "wan" counter name "${ROUTER_COUNTERS.wanIn}"`]);
  // Tests add their own counting rules here (Router.addCounter).
  out += chain('count-out', 'type filter hook postrouting priority 300', [`oifname "wan" counter name "${ROUTER_COUNTERS.wanOut}"`]);

  if (natted) {
    const prerouting = inboundRules(router);
    if (router.options.hairpin) {
      prerouting.push(`iifname "lan" ip daddr ${router.wanAddress} meta l4proto { tcp, udp } dnat ip to meta l4proto . th dport map @ext2int`);
    }
    out += chain('prerouting', 'type nat hook prerouting priority dstnat', prerouting);
    out += chain('source-nat', null, sourceNatRules(router));
    // Only forwarded traffic is translated, as on a real router: the router's own sockets already
    // send from the WAN address, and a symmetric NAT kind must not randomise their ports
    // (miniupnpd's STUN check runs from them, and would find "a symmetric NAT" in front of it).
    const postrouting = [`oifname "wan" ip saddr != ${router.wanAddress} jump source-nat`];
    // The looped-back packet must carry the sender's public mapping. @see RFC 4787 §6 REQ-9
    // (One kernel limit: a socket sending to its own mapping is seen from another port, because
    // conntrack refuses an entry whose reply tuple would equal its original tuple.)
    if (router.options.hairpin) postrouting.push(`oifname "lan" ip saddr ${lan} ct status dnat jump source-nat`);
    out += chain('postrouting', 'type nat hook postrouting priority srcnat', postrouting);
    // Runs after source NAT (priority 100): `th sport` is the external port here, the
    // conntrack original tuple still holds the internal endpoint.
    out += chain('learn', 'type filter hook postrouting priority srcnat + 10', [
      'ct direction original ct status snat meta l4proto { tcp, udp } ' +
        'update @ext2int { meta l4proto . th sport : ct original ip saddr . ct original proto-src } ' +
        'update @int2ext { ct original ip saddr . meta l4proto . ct original proto-src : th sport } ' +
        'update @sentto { ip daddr . meta l4proto . th sport }',
      // Replies on an admitted inbound flow keep its mapping alive as outbound packets do.
      'ct direction reply ct status dnat oifname "wan" meta l4proto { tcp, udp } ' +
        'update @ext2int { meta l4proto . th sport : ct reply ip saddr . ct reply proto-src }',
    ]);
  }
  out += chain('forward', 'type filter hook forward priority filter', forwardRules(router));
  out += chain('input', 'type filter hook input priority filter', inputRules(router));
  out += '}\n';
  out += lossRuleset('wan', router.options.lossPercent);
  return out;
}

/**
 * Random loss on one side of a link: a netdev ingress hook on `device`. Installed on both ends
 * of the WAN link, it drops in both directions. Only IPv4 is dropped, never ARP.
 */
export function lossRuleset(device: string, lossPercent: number): string {
  const table = lossTable(device);
  let out = `table netdev ${table}\ndelete table netdev ${table}\n`;
  if (lossPercent <= 0) return out;
  // numgen draws a whole number; counting in hundredths of a percent keeps fractions like 0.5 %.
  const threshold = Math.round(lossPercent * 100);
  out += `table netdev ${table} {\n  counter ${ROUTER_COUNTERS.lost} { }\n`;
  out += chain(
    `${device}-ingress`,
    `type filter hook ingress device "${device}" priority filter`,
    [`meta protocol ip numgen random mod 10000 < ${threshold} counter name "${ROUTER_COUNTERS.lost}" drop`],
  );
  out += '}\n';
  return out;
}

/** The rule `Router.addCounter` adds: count packets matching `match` leaving or entering on `wan`. */
export function counterRule(name: string, match: string, direction: 'out' | 'in'): string {
  validateCounterName(name);
  if (/[;\n\r#]/.test(match)) {
    throw new LabError(`lab counter ${name}: match ${JSON.stringify(match)} must be one nft match expression, without ';', '#' or newlines`);
  }
  const chainName = direction === 'out' ? 'count-out' : 'count-in';
  const iface = direction === 'out' ? 'oifname' : 'iifname';
  return `add counter ip ${NAT_TABLE} ${name}\nadd rule ip ${NAT_TABLE} ${chainName} ${iface} "wan" ${match} counter name "${name}"\n`;
}

/** The nft table (family ip6) of a router's IPv6 firewall, beside the IPv4 `natlab`. */
export const FIREWALL6_TABLE = 'natlab6';

/** Counters of the IPv6 firewall, in `ip6 natlab6` (Router.counter finds them by name). */
export const ROUTER_COUNTERS6 = {
  /** Every IPv6 packet arriving on `wan`. */
  wanIn: 'wan-in6',
  /** Every IPv6 packet leaving on `wan`. */
  wanOut: 'wan-out6',
  /** Inbound IPv6 packets from `wan` that matched no state and were dropped. */
  unsolicited: 'unsolicited6',
} as const;

/**
 * A router's IPv6 side: routed, never translated, and — in 'firewall' mode — the stateful
 * filter RFC 6092 recommends for IPv6 customer-premises routers: anything from the LAN opens
 * state, inbound traffic passes only on state (conntrack's `established,related`), anything
 * else from `wan` is dropped silently. Conntrack matches the whole 5-tuple, so the filter is
 * address-and-port-dependent (RFC 4787 §5 words): a UDP hole opened toward one remote
 * endpoint admits only that endpoint, which is what hole punching needs and all it gets.
 *
 * Timeouts are Linux's conntrack defaults (per namespace, shared with IPv4, and
 * `udpTimeoutSeconds` changes both): 30 s for a UDP flow seen in one direction only, 120 s once
 * both directions were seen. The second meets RFC 6092 §3.2.2's two minutes of idle time for a
 * UDP state record outside the well-known ports; the first is shorter than it asks for a flow
 * nobody answered, which is what a punch looks like until the other side's packet arrives.
 * ICMPv6 errors for a flow pass as `related` (RFC 6092 §3.2.1, RFC 4890 §4.3.1); neighbour
 * discovery is link-local and never forwarded, so it needs no rule here.
 * @see RFC 6092 §3.2 (IPv6 CPE filters), RFC 4890 (ICMPv6 filtering)
 */
export function firewall6Ruleset(router: RouterPlan): string {
  const table = FIREWALL6_TABLE;
  let out = `table ip6 ${table}\ndelete table ip6 ${table}\n`;
  out += `table ip6 ${table} {\n`;
  for (const name of Object.values(ROUTER_COUNTERS6)) out += `  counter ${name} { }\n`;
  out += chain('count-in', 'type filter hook prerouting priority -310', [`iifname "wan" counter name "${ROUTER_COUNTERS6.wanIn}"`]);
  out += chain('count-out', 'type filter hook postrouting priority 300', [`oifname "wan" counter name "${ROUTER_COUNTERS6.wanOut}"`]);
  const forward = router.options.ipv6 === 'open' ? [] : [
    'ct state established,related accept',
    'iifname "lan" accept',
    // Echo requests may pass (RFC 4890 §4.3.1); they open nothing.
    'iifname "wan" icmpv6 type echo-request accept',
    `iifname "wan" counter name "${ROUTER_COUNTERS6.unsolicited}" drop`,
  ];
  out += chain('forward', 'type filter hook forward priority filter', forward);
  out += '}\n';
  return out;
}
