/**
 * Connection-tracking entries as `conntrack -L` prints them, parsed. A NAT's mappings are
 * these entries: the original tuple holds the internal endpoint, the reply tuple the external
 * one the remote side sees.
 */

import { LabError } from '../errors.js';

/** One direction of a tracked flow. Ports are null for protocols without them (ICMP). */
export interface ConntrackTuple {
  src: string;
  dst: string;
  sport: number | null;
  dport: number | null;
}

export interface ConntrackEntry extends ConntrackTuple {
  /** 'tcp', 'udp', 'icmp', … */
  proto: string;
  protoNumber: number;
  /** Seconds left before the entry expires. */
  timeout: number;
  /** TCP state ('ESTABLISHED', 'SYN_SENT', …); null for protocols without one. */
  state: string | null;
  /** The tuple replies are expected to carry: for a translated flow, `reply.dst` is the public address. */
  reply: ConntrackTuple;
  /** No packet has been seen in the reply direction yet. */
  unreplied: boolean;
  assured: boolean;
}

function emptyTuple(): ConntrackTuple {
  return { src: '', dst: '', sport: null, dport: null };
}

function parsePort(value: string, line: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new LabError(`conntrack: port ${JSON.stringify(value)} in line ${JSON.stringify(line)} is not a port number`);
  }
  return port;
}

/** Parse one line of `conntrack -L` default output. */
export function parseConntrackLine(line: string): ConntrackEntry {
  const tokens = line.trim().split(/\s+/);
  const [proto, protoNumber, timeout] = tokens;
  if (proto === undefined || protoNumber === undefined || timeout === undefined || !/^\d+$/.test(protoNumber) || !/^\d+$/.test(timeout)) {
    throw new LabError(`conntrack: line ${JSON.stringify(line)} does not start with protocol, protocol number and timeout`);
  }
  const original = emptyTuple();
  const reply = emptyTuple();
  let state: string | null = null;
  let unreplied = false;
  let assured = false;
  // The first src/dst/sport/dport group is the original direction, the second the reply.
  let tuple = original;
  for (const token of tokens.slice(3)) {
    if (token === '[UNREPLIED]') unreplied = true;
    else if (token === '[ASSURED]') assured = true;
    else if (/^[A-Z_]+$/.test(token) && original.src === '') state = token;
    else {
      const eq = token.indexOf('=');
      if (eq <= 0) continue;
      const key = token.slice(0, eq);
      const value = token.slice(eq + 1);
      if (key === 'src') {
        if (tuple.src !== '') tuple = reply;
        tuple.src = value;
      } else if (key === 'dst') tuple.dst = value;
      else if (key === 'sport') tuple.sport = parsePort(value, line);
      else if (key === 'dport') tuple.dport = parsePort(value, line);
    }
  }
  if (original.src === '' || reply.src === '') {
    throw new LabError(`conntrack: line ${JSON.stringify(line)} lacks an original or a reply tuple`);
  }
  return { proto, protoNumber: Number(protoNumber), timeout: Number(timeout), state, ...original, reply, unreplied, assured };
}

/** Parse the whole stdout of `conntrack -L` (its summary line goes to stderr). */
export function parseConntrackList(text: string): ConntrackEntry[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('conntrack v'))
    .map(parseConntrackLine);
}
