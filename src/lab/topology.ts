/**
 * The lab's shape and addresses, computed without touching the system.
 *
 * ```
 *   server (198.51.100.10, .11)
 *      │ eth0 ── server
 *    inet (core router) ── bridge "core" 203.0.113.1/24
 *      │ a ── wan                         │ carrier-b ── wan
 *    router a  (lan bridge)             carrier-b (100.64.2.1/24) ── lan1 ── wan  router b …
 *      │ lan1 ── eth0   │ lan2 ── eth0
 *     a1               a2
 * ```
 * Only documentation and private ranges are used (RFC 5737, RFC 6598 for the carrier, RFC 1918
 * inside homes). Clients of `open` and `symmetric-firewall` routers get routed public addresses
 * from 192.0.2.0/24, because those routers do not translate.
 *
 * With `ipv6` (LabPlanOptions) every link is dual-stack, numbered from the IPv6 documentation
 * prefix 2001:db8::/32: the server 2001:db8:100::10 and ::11, the core 2001:db8:113::/64 (router
 * a's WAN ::10, b's ::20), and each home LAN a routed /64 (a: 2001:db8:1::/64, b: 2001:db8:2::/64),
 * never translated: IPv6 has no NAT here, only the router's stateful firewall (nat-ruleset.ts).
 *
 * @see RFC 5737 (documentation ranges), RFC 6598 (shared address space for carrier-grade NAT)
 * @see RFC 3849 (IPv6 documentation prefix), RFC 6092 (IPv6 CPE firewall)
 */

import { LabError } from '../errors.js';
import { isNatKind, translatesAddresses, type NatKind, NAT_KINDS } from './nat-kind.js';

export interface RouterOptions {
  kind: NatKind;
  /** Loop LAN packets addressed to the router's own public mappings back in (RFC 4787 §6). Default false. */
  hairpin?: boolean;
  /** What the router does with an unsolicited inbound TCP SYN. Default 'drop'. */
  tcpUnsolicited?: 'drop' | 'rst';
  /** Random loss on the router's WAN link, both directions, in percent (0–100). Default 0. */
  lossPercent?: number;
  /** nf_conntrack_udp_timeout and …_stream inside this router's namespace only. */
  udpTimeoutSeconds?: number;
  /** Hosts on its LAN. Default 1. */
  clients?: 1 | 2;
  /** Put a carrier-grade NAT of this kind (100.64.0.0/10) between this router and the internet. */
  carrier?: NatKind;
  /** Prepare a miniupnpd configuration (see Router.startMiniupnpd). */
  miniupnpd?: boolean;
  /**
   * IPv6 forwarding in a lab with `ipv6` on (ignored otherwise): 'firewall' (default) routes the
   * LAN's /64 without NAT behind a stateful firewall (RFC 6092: outbound opens, unsolicited
   * inbound is dropped); 'open' routes it unfiltered.
   */
  ipv6?: Ipv6Mode;
}

export type Ipv6Mode = 'firewall' | 'open';

/** RouterOptions with every default filled in. */
export interface ResolvedRouterOptions {
  kind: NatKind;
  hairpin: boolean;
  tcpUnsolicited: 'drop' | 'rst';
  lossPercent: number;
  udpTimeoutSeconds: number | null;
  clients: 1 | 2;
  miniupnpd: boolean;
  ipv6: Ipv6Mode;
}

export interface RouterPlan {
  /** 'a' | 'b' | 'carrier-a' | 'carrier-b' */
  readonly name: string;
  readonly netns: string;
  readonly kind: NatKind;
  readonly options: ResolvedRouterOptions;
  readonly wanAddress: string;
  readonly wanPrefixLength: number;
  readonly wanGateway: string;
  /** The router's own address on its LAN bridge, the gateway of its clients. */
  readonly lanAddress: string;
  readonly lanNetwork: string;
  /** Where the other end of this router's `wan` lives, and its name there. */
  readonly uplink: { readonly netns: string; readonly ifname: string };
  /** Namespaces attached to the LAN bridge: `lanN` here, `childIfname` there. */
  readonly lanPorts: readonly { readonly ifname: string; readonly netns: string; readonly childIfname: string }[];
  /** Networks behind a downstream router, reached through its WAN address. */
  readonly routes: readonly { readonly network: string; readonly via: string }[];
  /** Its IPv6 side, when the lab has IPv6 (null otherwise). */
  readonly ipv6: RouterIpv6Plan | null;
}

export interface RouterIpv6Plan {
  readonly wanAddress: string;
  readonly wanGateway: string;
  /** Its own address on the LAN, its clients' default gateway. */
  readonly lanAddress: string;
  /** The routed /64 of its LAN. */
  readonly lanNetwork: string;
  /** Host routes to the other routers' WAN addresses through the core (as for IPv4). */
  readonly routes: readonly { readonly network: string; readonly via: string }[];
}

export interface HostPlan {
  readonly name: string;
  readonly netns: string;
  readonly addresses: readonly string[];
  readonly prefixLength: number;
  readonly gateway: string;
  /** Its global IPv6 addresses (empty when the lab has no IPv6), each in a /64. */
  readonly addresses6: readonly string[];
  /** Its IPv6 default gateway (null when the lab has no IPv6). */
  readonly gateway6: string | null;
}

export interface LabPlanOptions {
  /** Dual-stack: IPv6 on every link besides IPv4 (default false: IPv4 only, IPv6 disabled). */
  ipv6?: boolean;
}

export interface LabPlan {
  readonly prefix: string;
  /** Whether the lab is dual-stack. */
  readonly ipv6: boolean;
  readonly inet: {
    readonly netns: string;
    readonly routes: readonly { readonly network: string; readonly via: string }[];
    readonly routes6: readonly { readonly network: string; readonly via: string }[];
  };
  readonly server: HostPlan;
  /** Upstream before downstream: a carrier comes before the home router behind it. */
  readonly routers: readonly RouterPlan[];
  readonly hosts: readonly HostPlan[];
}

export const SERVER_ADDRESSES = ['198.51.100.10', '198.51.100.11'] as const;
export const SERVER_GATEWAY = '198.51.100.1';
export const CORE_ADDRESS = '203.0.113.1';
const CORE_PREFIX_LENGTH = 24;
/** IPv6 numbering (RFC 3849 documentation prefix); every IPv6 link is a /64 (RFC 4291 §2.5.1). */
export const SERVER_ADDRESSES6 = ['2001:db8:100::10', '2001:db8:100::11'] as const;
export const SERVER_GATEWAY6 = '2001:db8:100::1';
export const CORE_ADDRESS6 = '2001:db8:113::1';
const IPV6_PREFIX_LENGTH = 64;

/** Fixed addresses per side, so a test reading a packet capture knows who is who. */
const sides = {
  a: { index: 1, wan: '203.0.113.10', carrierWan: '203.0.113.100', publicLan: '192.0.2.0', publicCarrierLan: '192.0.2.128', wan6: '2001:db8:113::10', lan6: '2001:db8:1::' },
  b: { index: 2, wan: '203.0.113.20', carrierWan: '203.0.113.200', publicLan: '192.0.2.64', publicCarrierLan: '192.0.2.192', wan6: '2001:db8:113::20', lan6: '2001:db8:2::' },
} as const;

const PREFIX_PATTERN = /^[A-Za-z][A-Za-z0-9_]{0,23}$/;

/** Namespace names are global on the machine: `${prefix}-${role}`; the prefix has no '-'. */
export function validatePrefix(prefix: string): void {
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new LabError(`lab: prefix ${JSON.stringify(prefix)} is not usable, expected a letter then up to 23 letters, digits or '_' (no '-')`);
  }
}

export function namespaceName(prefix: string, role: string): string {
  return `${prefix}-${role}`;
}

export function resolveRouterOptions(where: string, options: RouterOptions): ResolvedRouterOptions {
  if (!isNatKind(options.kind)) {
    throw new LabError(`lab: ${where}.kind is ${JSON.stringify(options.kind)}, expected one of ${NAT_KINDS.join(', ')}`);
  }
  const lossPercent = options.lossPercent ?? 0;
  if (!Number.isFinite(lossPercent) || lossPercent < 0 || lossPercent > 100) {
    throw new LabError(`lab: ${where}.lossPercent is ${String(options.lossPercent)}, expected a number from 0 to 100`);
  }
  const timeout = options.udpTimeoutSeconds;
  if (timeout !== undefined && (!Number.isInteger(timeout) || timeout < 1 || timeout > 86_400)) {
    throw new LabError(`lab: ${where}.udpTimeoutSeconds is ${String(timeout)}, expected a whole number of seconds from 1 to 86400`);
  }
  const clients = options.clients ?? 1;
  if (clients !== 1 && clients !== 2) {
    throw new LabError(`lab: ${where}.clients is ${String(options.clients)}, expected 1 or 2`);
  }
  const tcpUnsolicited = options.tcpUnsolicited ?? 'drop';
  if (tcpUnsolicited !== 'drop' && tcpUnsolicited !== 'rst') {
    throw new LabError(`lab: ${where}.tcpUnsolicited is ${JSON.stringify(options.tcpUnsolicited)}, expected 'drop' or 'rst'`);
  }
  const ipv6 = options.ipv6 ?? 'firewall';
  if (ipv6 !== 'firewall' && ipv6 !== 'open') {
    throw new LabError(`lab: ${where}.ipv6 is ${JSON.stringify(options.ipv6)}, expected 'firewall' or 'open'`);
  }
  if (options.carrier !== undefined && !isNatKind(options.carrier)) {
    throw new LabError(`lab: ${where}.carrier is ${JSON.stringify(options.carrier)}, expected one of ${NAT_KINDS.join(', ')}`);
  }
  return {
    kind: options.kind,
    hairpin: options.hairpin ?? false,
    tcpUnsolicited,
    lossPercent,
    udpTimeoutSeconds: timeout ?? null,
    clients,
    miniupnpd: options.miniupnpd ?? false,
    ipv6,
  };
}

/** `base` + `n` inside a /24 written as four octets. */
function offset(base: string, n: number): string {
  const octets = base.split('.').map(Number);
  octets[3] = (octets[3] ?? 0) + n;
  return octets.join('.');
}

interface LanShape {
  network: string;
  prefixLength: number;
  gateway: string;
  /** Address of the n-th attached namespace, n from 1. */
  member(n: number): string;
}

function lanShape(base: string, prefixLength: number): LanShape {
  return {
    network: `${base}/${prefixLength}`,
    prefixLength,
    gateway: offset(base, 1),
    member: (n) => offset(base, 1 + n),
  };
}

/** A home router's LAN: private when it translates, routed public space when it does not. */
function homeLan(side: keyof typeof sides, kind: NatKind): LanShape {
  const s = sides[side];
  return translatesAddresses(kind) ? lanShape(`10.0.${s.index}.0`, 24) : lanShape(s.publicLan, 26);
}

/** A carrier's LAN: RFC 6598 shared space when it translates. */
function carrierLan(side: keyof typeof sides, kind: NatKind): LanShape {
  const s = sides[side];
  return translatesAddresses(kind) ? lanShape(`100.64.${s.index}.0`, 24) : lanShape(s.publicCarrierLan, 26);
}

export function planLab(prefix: string, a: RouterOptions, b?: RouterOptions, planOptions: LabPlanOptions = {}): LabPlan {
  validatePrefix(prefix);
  const ipv6 = planOptions.ipv6 ?? false;
  if (ipv6 && (a.carrier !== undefined || b?.carrier !== undefined)) {
    throw new LabError('lab: ipv6 with a carrier NAT is not built yet (carrier-grade NAT is an IPv4 matter; give the carrier no ipv6, or no carrier)');
  }
  const ns = (role: string): string => namespaceName(prefix, role);
  const inetNetns = ns('inet');
  const routers: RouterPlan[] = [];
  const hosts: HostPlan[] = [];
  const inetRoutes: { network: string; via: string }[] = [];
  const inetRoutes6: { network: string; via: string }[] = [];

  for (const [side, options] of [['a', a], ['b', b]] as const) {
    if (options === undefined) continue;
    const resolved = resolveRouterOptions(side, options);
    const lan = homeLan(side, resolved.kind);
    const homeNetns = ns(side);
    const clientNames = Array.from({ length: resolved.clients }, (_, i) => `${side}${i + 1}`);

    let uplink = { netns: inetNetns, ifname: side as string };
    let wan: { address: string; prefixLength: number; gateway: string } = { address: sides[side].wan, prefixLength: CORE_PREFIX_LENGTH, gateway: CORE_ADDRESS };
    if (options.carrier !== undefined) {
      const carrierName = `carrier-${side}`;
      const carrierKind = options.carrier;
      const carrierOptions = resolveRouterOptions(`${side}.carrier`, { kind: carrierKind });
      const clan = carrierLan(side, carrierKind);
      const carrierNetns = ns(carrierName);
      routers.push({
        name: carrierName,
        netns: carrierNetns,
        kind: carrierKind,
        options: carrierOptions,
        wanAddress: sides[side].carrierWan,
        wanPrefixLength: CORE_PREFIX_LENGTH,
        wanGateway: CORE_ADDRESS,
        lanAddress: clan.gateway,
        lanNetwork: clan.network,
        uplink: { netns: inetNetns, ifname: carrierName },
        lanPorts: [{ ifname: 'lan1', netns: homeNetns, childIfname: 'wan' }],
        routes: [{ network: lan.network, via: clan.member(1) }],
        ipv6: null,
      });
      // Only what does not pass through a translator is reachable from outside.
      if (!translatesAddresses(carrierKind)) {
        inetRoutes.push({ network: clan.network, via: sides[side].carrierWan });
        if (!translatesAddresses(resolved.kind)) inetRoutes.push({ network: lan.network, via: sides[side].carrierWan });
      }
      uplink = { netns: carrierNetns, ifname: 'lan1' };
      wan = { address: clan.member(1), prefixLength: clan.prefixLength, gateway: clan.gateway };
    } else if (!translatesAddresses(resolved.kind)) {
      inetRoutes.push({ network: lan.network, via: wan.address });
    }

    const lan6 = sides[side].lan6;
    if (ipv6) inetRoutes6.push({ network: `${lan6}/${IPV6_PREFIX_LENGTH}`, via: sides[side].wan6 });
    routers.push({
      name: side,
      netns: homeNetns,
      kind: resolved.kind,
      options: resolved,
      wanAddress: wan.address,
      wanPrefixLength: wan.prefixLength,
      wanGateway: wan.gateway,
      lanAddress: lan.gateway,
      lanNetwork: lan.network,
      uplink,
      lanPorts: clientNames.map((name, i) => ({ ifname: `lan${i + 1}`, netns: ns(name), childIfname: 'eth0' })),
      routes: [],
      ipv6: ipv6 ? { wanAddress: sides[side].wan6, wanGateway: CORE_ADDRESS6, lanAddress: `${lan6}1`, lanNetwork: `${lan6}/${IPV6_PREFIX_LENGTH}`, routes: [] } : null,
    });
    clientNames.forEach((name, i) => {
      hosts.push({
        name, netns: ns(name), addresses: [lan.member(i + 1)], prefixLength: lan.prefixLength, gateway: lan.gateway,
        addresses6: ipv6 ? [`${lan6}${(i + 2).toString(16)}`] : [], gateway6: ipv6 ? `${lan6}1` : null,
      });
    });
  }

  // On the internet a router stands between any two NATs: the outermost routers share the core
  // bridge, but reach one another through the core router, not directly. A SYN with a small TTL
  // must be able to die between the NATs (TCP TTL priming), and hop counts must look real.
  const onCore = routers.filter((r) => r.uplink.netns === inetNetns);
  const routed = routers.map((r) => r.uplink.netns !== inetNetns ? r : {
    ...r,
    routes: [...r.routes, ...onCore.filter((o) => o !== r).map((o) => ({ network: `${o.wanAddress}/32`, via: CORE_ADDRESS }))],
    ipv6: r.ipv6 && {
      ...r.ipv6,
      routes: onCore.filter((o) => o !== r && o.ipv6).map((o) => ({ network: `${o.ipv6!.wanAddress}/128`, via: CORE_ADDRESS6 })),
    },
  });

  return {
    prefix,
    ipv6,
    inet: { netns: inetNetns, routes: inetRoutes, routes6: inetRoutes6 },
    server: {
      name: 'server', netns: ns('server'), addresses: [...SERVER_ADDRESSES], prefixLength: 24, gateway: SERVER_GATEWAY,
      addresses6: ipv6 ? [...SERVER_ADDRESSES6] : [], gateway6: ipv6 ? SERVER_GATEWAY6 : null,
    },
    routers: routed,
    hosts,
  };
}

/** Every namespace of the plan, in the order they must be configured (parents first). */
export function planNamespaces(plan: LabPlan): string[] {
  return [plan.inet.netns, plan.server.netns, ...plan.routers.map((r) => r.netns), ...plan.hosts.map((h) => h.netns)];
}

/**
 * `ip -batch` lines per namespace. A parent creates the veth pair and moves the child's end
 * into the child namespace, so each namespace configures only what it owns and the batches
 * can run parents first.
 */
export function planIpBatches(plan: LabPlan): { netns: string; lines: string[] }[] {
  const batches: { netns: string; lines: string[] }[] = [];

  const inet: string[] = [
    'link set dev lo up',
    'link add name core type bridge',
    'link set dev core up',
    `address add ${CORE_ADDRESS}/${CORE_PREFIX_LENGTH} dev core`,
    `link add name server type veth peer name eth0 netns ${plan.server.netns}`,
    'link set dev server up',
    `address add ${SERVER_GATEWAY}/24 dev server`,
  ];
  if (plan.ipv6) inet.push(`address add ${CORE_ADDRESS6}/${IPV6_PREFIX_LENGTH} dev core`, `address add ${SERVER_GATEWAY6}/${IPV6_PREFIX_LENGTH} dev server`);
  for (const router of plan.routers) {
    if (router.uplink.netns !== plan.inet.netns) continue;
    inet.push(
      `link add name ${router.uplink.ifname} type veth peer name wan netns ${router.netns}`,
      `link set dev ${router.uplink.ifname} master core`,
      `link set dev ${router.uplink.ifname} up`,
    );
  }
  for (const route of plan.inet.routes) inet.push(`route add ${route.network} via ${route.via}`);
  for (const route of plan.inet.routes6) inet.push(`route add ${route.network} via ${route.via}`);
  batches.push({ netns: plan.inet.netns, lines: inet });

  batches.push({ netns: plan.server.netns, lines: hostLines(plan.server) });

  for (const router of plan.routers) {
    const lines = [
      'link set dev lo up',
      'link set dev wan up',
      `address add ${router.wanAddress}/${router.wanPrefixLength} dev wan`,
      'link add name lan type bridge',
      'link set dev lan up',
      `address add ${router.lanAddress}/${router.lanNetwork.split('/')[1]} dev lan`,
    ];
    for (const port of router.lanPorts) {
      lines.push(
        `link add name ${port.ifname} type veth peer name ${port.childIfname} netns ${port.netns}`,
        `link set dev ${port.ifname} master lan`,
        `link set dev ${port.ifname} up`,
      );
    }
    lines.push(`route add default via ${router.wanGateway}`);
    for (const route of router.routes) lines.push(`route add ${route.network} via ${route.via}`);
    const v6 = router.ipv6;
    if (v6) {
      lines.push(
        `address add ${v6.wanAddress}/${IPV6_PREFIX_LENGTH} dev wan`,
        `address add ${v6.lanAddress}/${IPV6_PREFIX_LENGTH} dev lan`,
        `route add ::/0 via ${v6.wanGateway}`,
        ...v6.routes.map((route) => `route add ${route.network} via ${route.via}`),
      );
    }
    batches.push({ netns: router.netns, lines });
  }

  for (const host of plan.hosts) batches.push({ netns: host.netns, lines: hostLines(host) });
  return batches;
}

function hostLines(host: HostPlan): string[] {
  return [
    'link set dev lo up',
    'link set dev eth0 up',
    ...host.addresses.map((address) => `address add ${address}/${host.prefixLength} dev eth0`),
    `route add default via ${host.gateway}`,
    ...host.addresses6.map((address) => `address add ${address}/${IPV6_PREFIX_LENGTH} dev eth0`),
    ...(host.gateway6 ? [`route add ::/0 via ${host.gateway6}`] : []),
  ];
}
