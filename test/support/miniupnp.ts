/**
 * miniupnpd 2.3.1 and its clients (miniupnpc's upnpc, libnatpmp's natpmpc) as real peers:
 * parsers for what they print, read from these tools run in a lab router against `natpunch serve`.
 */

import { ENDPOINT_PATTERN as ENDPOINT } from './serve.js';

export interface MiniupnpdStun {
  /** One entry per STUN answer miniupnpd parsed, in arrival order. */
  answers: { mapped: string | null; other: string | null; origin: string | null }[];
  /** The public address its verdict line names. */
  publicAddress: string | null;
  /** Whether it went on to allow port forwarding. */
  forwarding: 'enabled' | 'disabled' | null;
}

/** miniupnpd's debug log (-d) of its start-up STUN run (upnpstun.c). */
export function parseMiniupnpdStun(log: string): MiniupnpdStun {
  const answers = log.split(/parse_stun_response: Type /).slice(1).map((block) => ({
    mapped: new RegExp(`XOR-MAPPED-ADDRESS ${ENDPOINT}`).exec(block)?.[1] ?? null,
    other: new RegExp(`OTHER-ADDRESS ${ENDPOINT}`).exec(block)?.[1] ?? null,
    origin: new RegExp(`RESPONSE-ORIGIN ${ENDPOINT}`).exec(block)?.[1] ?? null,
  }));
  const publicAddress = /STUN: ext interface \S+ .*? public IP address (\d{1,3}(?:\.\d{1,3}){3})/.exec(log)?.[1] ?? null;
  const forwarding = /Port forwarding is now (enabled|disabled)/.exec(log)?.[1] as MiniupnpdStun['forwarding'] | undefined;
  return { answers, publicAddress, forwarding: forwarding ?? null };
}

export interface PortRedirect {
  protocol: 'TCP' | 'UDP';
  external: string;
  internal: string;
}

/** `upnpc -a ...`: "external A:P UDP is redirected to internal B:Q (duration=N)". */
export function parseUpnpcAdd(stdout: string): PortRedirect | null {
  const m = new RegExp(`external ${ENDPOINT} (TCP|UDP) is redirected to internal ${ENDPOINT}`).exec(stdout);
  return m === null ? null : { protocol: m[2] as 'TCP' | 'UDP', external: m[1]!, internal: m[3]! };
}

export interface UpnpcListEntry {
  protocol: 'TCP' | 'UDP';
  externalPort: number;
  internal: string;
  description: string;
  leaseSeconds: number;
}

/** `upnpc -l`: rows like " 0 UDP  5000->10.0.1.2:5000  'test' '' 604797". */
export function parseUpnpcList(stdout: string): UpnpcListEntry[] {
  const row = new RegExp(String.raw`^\s*\d+\s+(TCP|UDP)\s+(\d+)->${ENDPOINT}\s+'([^']*)'\s+'[^']*'\s+(\d+)`, 'gm');
  return [...stdout.matchAll(row)].map((m) => ({
    protocol: m[1] as 'TCP' | 'UDP',
    externalPort: Number(m[2]),
    internal: m[3]!,
    description: m[4]!,
    leaseSeconds: Number(m[5]),
  }));
}

export interface NatpmpcMapping {
  gateway: string | null;
  publicAddress: string | null;
  mapping: { protocol: 'TCP' | 'UDP'; publicPort: number; privatePort: number; lifetimeSeconds: number } | null;
}

/** `natpmpc -a PUBLIC PRIVATE udp LIFETIME` (libnatpmp 20150609, which spells it "liftime"). */
export function parseNatpmpc(stdout: string): NatpmpcMapping {
  const m = /Mapped public port (\d+) protocol (TCP|UDP) to local port (\d+) (?:liftime|lifetime) (\d+)/.exec(stdout);
  return {
    gateway: /using gateway : (\S+)/.exec(stdout)?.[1] ?? null,
    publicAddress: /Public IP address : (\S+)/.exec(stdout)?.[1] ?? null,
    mapping: m === null ? null : { protocol: m[2] as 'TCP' | 'UDP', publicPort: Number(m[1]), privatePort: Number(m[3]), lifetimeSeconds: Number(m[4]) },
  };
}

/**
 * The DNAT rules miniupnpd wrote into its nft chain, from `nft list chain`. It matches the
 * protocol by raw header bytes ("@nh,72,8 0x11" is IPv4 protocol 17, UDP).
 */
export function parseMiniupnpdRedirects(nftText: string): { protocol: 'TCP' | 'UDP'; externalPort: number; internal: string }[] {
  const redirects: { protocol: 'TCP' | 'UDP'; externalPort: number; internal: string }[] = [];
  for (const line of nftText.split('\n')) {
    const m = new RegExp(`th dport (\\d+) dnat ip to ${ENDPOINT}`).exec(line);
    if (m === null) continue;
    const proto = /@nh,72,8 (0x[0-9a-f]+)/.exec(line)?.[1];
    const protocol = proto === '0x11' ? 'UDP' : proto === '0x6' || proto === '0x06' ? 'TCP' : null;
    if (protocol === null) continue;
    redirects.push({ protocol, externalPort: Number(m[1]), internal: m[2]! });
  }
  return redirects;
}
