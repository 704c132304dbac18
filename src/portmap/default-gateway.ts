/**
 * Where port-mapping requests go: the default route's gateway. NAT-PMP and PCP talk to it by
 * definition (RFC 6886 §3.1: "the client ... sends its request to the default gateway"; RFC 6887
 * §8.1 likewise when no PCP server is configured). On Linux the kernel's IPv4 routing table is
 * /proc/net/route; elsewhere the caller passes the gateway as an option.
 * @see RFC 6886 §3.1, RFC 6887 §8.1
 */

import { readFile } from 'node:fs/promises';
import { PortMapDecodeError, PortMapError } from '../errors.js';

export const PROC_NET_ROUTE = '/proc/net/route';
/** RTF_UP | RTF_GATEWAY from <linux/route.h>. */
const RTF_UP = 0x1;
const RTF_GATEWAY = 0x2;

export interface DefaultRoute {
  interface: string;
  gateway: string;
  metric: number;
}

/**
 * The default routes in /proc/net/route's text, lowest metric first. Its columns are
 * Iface, Destination, Gateway, Flags, RefCnt, Use, Metric, Mask, …; addresses are 8 hex digits in
 * the kernel's byte order (little-endian on every Linux port Node runs on).
 * @throws PortMapDecodeError on a header or row that is not that format
 */
export function parseProcNetRoute(text: string): DefaultRoute[] {
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  if (lines.length === 0) throw new PortMapDecodeError(`${PROC_NET_ROUTE}: empty, expected a header line`);
  const header = lines[0]!.trim().split(/\s+/);
  const column = (name: string): number => {
    const index = header.indexOf(name);
    if (index < 0) throw new PortMapDecodeError(`${PROC_NET_ROUTE}: no "${name}" column in header "${lines[0]!.trim()}"`);
    return index;
  };
  const [iface, destination, gateway, flags, metric, mask] = ['Iface', 'Destination', 'Gateway', 'Flags', 'Metric', 'Mask'].map(column) as [number, number, number, number, number, number];
  const routes: DefaultRoute[] = [];
  for (const [n, line] of lines.slice(1).entries()) {
    const fields = line.trim().split(/\s+/);
    const field = (index: number, what: string, pattern: RegExp): string => {
      const value = fields[index];
      if (value === undefined || !pattern.test(value)) throw new PortMapDecodeError(`${PROC_NET_ROUTE} line ${n + 2}: ${what} "${value ?? ''}" is not ${pattern.source}`);
      return value;
    };
    const hex8 = /^[0-9A-Fa-f]{8}$/;
    const routeFlags = parseInt(field(flags, 'Flags', /^[0-9A-Fa-f]{1,8}$/), 16);
    if (field(destination, 'Destination', hex8) !== '00000000' || field(mask, 'Mask', hex8) !== '00000000') continue;
    if ((routeFlags & (RTF_UP | RTF_GATEWAY)) !== (RTF_UP | RTF_GATEWAY)) continue;
    const value = parseInt(field(gateway, 'Gateway', hex8), 16);
    routes.push({
      interface: field(iface, 'Iface', /^\S+$/),
      gateway: [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24].join('.'),
      metric: Number(field(metric, 'Metric', /^\d+$/)),
    });
  }
  return routes.sort((a, b) => a.metric - b.metric);
}

/**
 * The IPv4 default gateway of this network namespace.
 * @throws PortMapError `no-gateway` when there is no default route or the table cannot be read
 */
export async function defaultGateway(read: (path: string) => Promise<string> = (path) => readFile(path, 'utf8')): Promise<string> {
  let text: string;
  try {
    text = await read(PROC_NET_ROUTE);
  } catch (error) {
    throw new PortMapError('no-gateway', `port mapping: cannot read ${PROC_NET_ROUTE} (${(error as Error).message}); pass the gateway's address as the \`gateway\` option`, { cause: error });
  }
  const route = parseProcNetRoute(text)[0];
  if (route === undefined) throw new PortMapError('no-gateway', `port mapping: no IPv4 default route in ${PROC_NET_ROUTE}, so no gateway to ask; pass \`gateway\` if the NAT is elsewhere`);
  return route.gateway;
}
