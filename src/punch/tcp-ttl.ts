/**
 * Low-TTL SYN priming for TCP hole punching through NATs that answer an unsolicited SYN with
 * RST, and the measurement of how many hops away the own (outermost) NAT is.
 *
 * Node cannot set a TCP socket's IP TTL before its SYN leaves, so the socket calls live in a
 * small N-API addon built from source (native/tcp-ttl, `npm run build:native`). Without it
 * (no build tools, not Linux, or NATPUNCH_NO_NATIVE=1) punching proceeds unprimed and
 * ttlPrimingAvailable() says why. Design and alternatives: docs/decisions/005-tcp-ttl-priming.md.
 *
 * @see Guha, Francis, "Characterization and Measurement of TCP Traversal through NATs and
 *   Firewalls", IMC 2005, §4 (STUNT: a SYN with a TTL too small to reach the far NAT opens the
 *   own NAT without provoking the far NAT's RST)
 */
import net from 'node:net';
import { networkInterfaces } from 'node:os';
import { debuglog } from 'node:util';
import { type AddonAvailability, addonAvailability, loadAddon } from '../native/load-addon.js';

const debug = debuglog('natpunch:tcp-ttl');

/** One answered probe of a trace: ICMP type 11 (time exceeded) or 3 (unreachable) and who sent it. */
export interface TraceHop {
  ttl: number;
  type: number;
  code: number;
  offender: string | null;
}

/** The addon's functions (native/tcp-ttl/tcp_ttl.c). All IPv4. */
export interface TcpTtlAddon {
  /** One SYN from localAddress:localPort with IP TTL `ttl`, then close (which sends nothing). */
  primeSyn(localAddress: string, localPort: number, remoteAddress: string, remotePort: number, ttl: number): void;
  /**
   * The same SYN from a socket that stays in SYN-SENT (TTL back to default) and returns its fd;
   * `quiet` (default true): IP_MINTTL 255 until endQuiet, so the SYN's ICMP time exceeded does
   * not abort the connect (without it Linux fails it with EHOSTUNREACH, seen in the lab).
   */
  primedConnect(localAddress: string, localPort: number, remoteAddress: string, remotePort: number, ttl: number, quiet?: boolean): number;
  endQuiet(fd: number): void;
  /** 'connecting', 'connected', or the errno name the connect failed with. */
  connectState(fd: number): string;
  closeFd(fd: number): void;
  /** UDP probes with TTL 1..maxTtl to targetAddress; the ICMP errors they caused, per TTL. */
  traceHops(targetAddress: string, maxTtl: number, waitMs: number, localAddress: string): Promise<TraceHop[]>;
}

export type TtlPrimingAvailability = AddonAvailability;

const ADDON = ['tcp-ttl', 'tcp_ttl', 'IP_RECVERR and IP_MINTTL'] as const;

/** Whether low-TTL priming can run here, and if not, why (for debug and --json output). */
export function ttlPrimingAvailable(): TtlPrimingAvailability {
  return addonAvailability(...ADDON);
}

/** The addon, or undefined where ttlPrimingAvailable() is not ok. */
export function tcpTtlAddon(): TcpTtlAddon | undefined {
  const result = loadAddon<TcpTtlAddon>(...ADDON);
  return 'addon' in result ? result.addon : undefined;
}

/**
 * Bounds of the measurement: NATs sit within the first few hops (home router, perhaps a
 * carrier-grade NAT behind it); 8 hops covers a double NAT inside an ISP with room to spare.
 * Each probe is sent twice at most; the whole trace takes TRACE_WAIT_MS, once per peer.
 */
export const MAX_PRIMING_TTL = 8;
export const TRACE_WAIT_MS = 400;

export type PrimingTtl = { ttl: number; hops: number } | { ttl: null; reason: string };

/**
 * The priming rule: trace towards the own public address P (the TCP mapping's address, learnt
 * over STUN) and count the hops to the device that owns P, the outermost NAT. Probes addressed
 * to P are delivered to that NAT itself, so they never expire there: every router before it
 * answers "time exceeded", the NAT stays silent or says "port unreachable". With N = 1 + the
 * largest TTL answered with time exceeded (or the smallest TTL answered "unreachable"), a SYN
 * with TTL N + 1 passes every NAT of ours (each creates its mapping and conntrack entry) and
 * expires at the first router beyond the outermost one, before the far peer's NAT, as long as
 * at least one router separates the two NATs (true on the internet; see the ADR for the lab).
 *
 * Losing a probe or a router that never sends ICMP can only make N smaller (the SYN then dies
 * before the own NAT: priming has no effect, punching still works where it did before), never
 * larger: a too-large TTL would reach the far NAT and provoke the very RST priming avoids.
 *
 * @param localAddresses this host's own addresses: P among them means no NAT, nothing to prime
 */
export function primingTtlFromTrace(publicAddress: string, hops: readonly TraceHop[], localAddresses: readonly string[], maxTtl = MAX_PRIMING_TTL): PrimingTtl {
  if (localAddresses.includes(publicAddress)) return { ttl: null, reason: `no NAT: the public address ${publicAddress} is this host's own` };
  const unreachable = hops.filter((h) => h.type === 3).map((h) => h.ttl);
  const expired = hops.filter((h) => h.type === 11).map((h) => h.ttl);
  const hopsToNat = unreachable.length > 0 ? Math.min(...unreachable) : 1 + Math.max(0, ...expired);
  if (hopsToNat >= maxTtl) {
    return { ttl: null, reason: `the own public address ${publicAddress} was not reached within ${maxTtl} hops (every probe expired on the way)` };
  }
  return { ttl: hopsToNat + 1, hops: hopsToNat };
}

function localAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

const measured = new Map<string, Promise<PrimingTtl>>();

/**
 * The priming TTL for punching from `localAddress` through the NAT(s) that map it to
 * `publicAddress`; measured once per (local, public) pair and cached, so a peer measures once.
 * Never rejects: an unavailable addon or a failed trace is a { ttl: null, reason }.
 */
export function measurePrimingTtl(publicAddress: string, localAddress = '0.0.0.0'): Promise<PrimingTtl> {
  const key = `${localAddress}|${publicAddress}`;
  let result = measured.get(key);
  if (result) return result;
  const addon = tcpTtlAddon();
  if (!addon) return Promise.resolve({ ttl: null, reason: (ttlPrimingAvailable() as { reason: string }).reason });
  result = addon.traceHops(publicAddress, MAX_PRIMING_TTL, TRACE_WAIT_MS, localAddress).then(
    (hops) => {
      const ttl = primingTtlFromTrace(publicAddress, hops, localAddresses());
      debug('trace to own public address %s: %j -> %j', publicAddress, hops, ttl);
      return ttl;
    },
    (error: Error): PrimingTtl => ({ ttl: null, reason: `tracing the hops to ${publicAddress} failed: ${error.message}` }),
  );
  measured.set(key, result);
  return result;
}

/**
 * Everything priming needs from outside: whether it can run, the addon, the TTL measurement,
 * and adopting a connected fd as a node:net Socket. Injected so the sim can prime on its own
 * sockets (src/sim/tcp-ttl.ts); the default is native/tcp-ttl, measurePrimingTtl and node:net.
 */
export interface TtlPriming {
  available(): TtlPrimingAvailability;
  addon(): TcpTtlAddon | undefined;
  measure(publicAddress: string, localAddress: string): Promise<PrimingTtl>;
  /** The socket for a primed connect that has connected (what `new net.Socket({ fd })` does). */
  adopt(fd: number, options: { allowHalfOpen: boolean }): net.Socket;
}

export const nativeTtlPriming: TtlPriming = {
  available: ttlPrimingAvailable,
  addon: tcpTtlAddon,
  measure: measurePrimingTtl,
  adopt: (fd, options) => new net.Socket({ fd, allowHalfOpen: options.allowHalfOpen, readable: true, writable: true }),
};
