/**
 * Observe what a lab NAT really does, with the lab's own probes rather than natpunch's STUN
 * code: the independent witness that a router behaves as `natTruth` says.
 *
 * The tests are RFC 5780's, done with plain datagrams to a reflector on the server's two
 * addresses and two ports: the mapped address per destination (§4.3), whether answers from
 * another address or port get through (§4.4), and the ports fresh sockets get (RFC 4787 §4.2.1).
 */

import type { ChildProcess } from 'node:child_process';
import { isIPv6 } from 'node:net';
import { LabError } from '../errors.js';
import type { Host } from './lab.js';
import type { EndpointDependence, NatTruth, PortAllocation, Rfc3489Class } from './nat-kind.js';
import { probeArgv, splitEndpoint, type AllocationResult, type FilteringResult, type MappingResult, type ProbeRequest, type TcpMappingResult } from './probe.js';
import { SERVER_ADDRESSES } from './topology.js';

/** Ports the reflector uses by default: clear of STUN's 3478/3479 so both can run at once. */
export const REFLECTOR_PORTS = [4478, 4479] as const;

export interface Reflector {
  /** [primary, other port, other address, other address and port], as RFC 5780 names them. */
  readonly endpoints: readonly [string, string, string, string];
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * The JSON lines a probe prints on stdout, read in order. Attach it right after spawning, so no
 * line is missed; `next()` waits for the following one.
 */
export class JsonLines {
  readonly #where: string;
  readonly #lines: string[] = [];
  readonly #waiters: { resolve: (line: string) => void; reject: (error: Error) => void }[] = [];
  #buffered = '';
  #stderr = '';
  #ended: string | null = null;

  constructor(child: ChildProcess, where: string) {
    this.#where = where;
    child.stdout?.on('data', (chunk: Buffer) => {
      this.#buffered += chunk.toString('utf8');
      let newline: number;
      while ((newline = this.#buffered.indexOf('\n')) >= 0) {
        const line = this.#buffered.slice(0, newline);
        this.#buffered = this.#buffered.slice(newline + 1);
        const waiter = this.#waiters.shift();
        if (waiter) waiter.resolve(line);
        else this.#lines.push(line);
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      if (this.#stderr.length < 64 * 1024) this.#stderr += chunk.toString('utf8');
    });
    child.once('exit', (code, signal) => {
      this.#ended = `exited (${code ?? signal})`;
      for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#endError());
    });
  }

  #endError(): LabError {
    return new LabError(`${this.#where}: ${this.#ended ?? 'ended'} before printing the expected line; stderr: ${this.#stderr.trim() || 'empty'}`);
  }

  /** The next line parsed as JSON; rejects if the process ends first or after `timeoutMs` (a safety net). */
  async next<T>(timeoutMs = 10_000): Promise<T> {
    const line = await new Promise<string>((resolve, reject) => {
      const queued = this.#lines.shift();
      if (queued !== undefined) return resolve(queued);
      if (this.#ended !== null) return reject(this.#endError());
      const waiter = {
        resolve: (value: string) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new LabError(`${this.#where}: printed no line within ${timeoutMs} ms; stderr: ${this.#stderr.trim() || 'empty'}`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
    try {
      return JSON.parse(line) as T;
    } catch {
      throw new LabError(`${this.#where}: expected a JSON line, got ${JSON.stringify(line)}`);
    }
  }
}

/**
 * Start the reflector probe in `server` on both its addresses and two ports; resolves once it is
 * bound. `addresses`: the server's two IPv6 ones (SERVER_ADDRESSES6) observe a router's IPv6 side.
 */
export async function startReflector(server: Host, ports: readonly [number, number] = REFLECTOR_PORTS, addresses: readonly [string, string] = SERVER_ADDRESSES): Promise<Reflector> {
  const [a1, a2] = addresses.map((a) => (isIPv6(a) ? `[${a}]` : a)) as [string, string];
  const endpoints = [`${a1}:${ports[0]}`, `${a1}:${ports[1]}`, `${a2}:${ports[0]}`, `${a2}:${ports[1]}`] as const;
  const child = server.spawn(probeArgv({ mode: 'reflect', bind: [...endpoints] }));
  await new JsonLines(child, `reflector in ${server.netns}`).next();
  return {
    endpoints,
    process: child,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Run one probe to completion on `host` and parse its JSON answer. */
export async function runProbe<T>(host: Host, request: ProbeRequest, timeoutMs = 30_000): Promise<T> {
  const result = await host.exec(probeArgv(request), { timeoutMs });
  if (result.code !== 0) {
    throw new LabError(`probe ${request.mode} on ${host.name}: exit ${result.code ?? result.signal}, expected 0: ${result.stderr.trim()}`);
  }
  return JSON.parse(result.stdout) as T;
}

export interface ObservedBehaviour extends NatTruth {
  /** The server-reflexive address of the first probe (UDP, or TCP when UDP is blocked). */
  mappedAddress: string | null;
}

const port = (endpoint: string): number => splitEndpoint(endpoint).port;

function classifyMapping(seen: readonly string[]): EndpointDependence {
  const [toPrimary, toOtherPort, toOtherAddress, toOtherBoth] = seen;
  if (seen.every((s) => s === toPrimary)) return 'endpoint-independent';
  // Same mapping per destination address, a new one per address. @see RFC 5780 §4.3
  if (toPrimary === toOtherPort && toOtherAddress === toOtherBoth) return 'address-dependent';
  return 'address-and-port-dependent';
}

/** Preserving when every external port equals its local one; sequential when the steps are one small constant. */
export function classifyAllocation(pairs: readonly { local: number; mapped: string }[]): PortAllocation {
  if (pairs.every((p) => port(p.mapped) === p.local)) return 'preserving';
  const ports = pairs.map((p) => port(p.mapped));
  const deltas = ports.slice(1).map((p, i) => p - (ports[i] ?? 0));
  const first = deltas[0] ?? 0;
  if (first !== 0 && Math.abs(first) <= 10 && deltas.every((d) => d === first)) return 'sequential';
  return 'random';
}

function rfc3489Class(natted: boolean, mapping: EndpointDependence, filtering: EndpointDependence): Rfc3489Class {
  if (!natted) return filtering === 'endpoint-independent' ? 'open-internet' : 'symmetric-udp-firewall';
  if (mapping !== 'endpoint-independent') return 'symmetric';
  if (filtering === 'endpoint-independent') return 'full-cone';
  return filtering === 'address-dependent' ? 'restricted-cone' : 'port-restricted-cone';
}

/**
 * Find out how the NAT in front of `host` behaves, from `host`, against a running reflector.
 * Takes a few seconds: the filtering tests wait for answers that a filtering NAT never lets in.
 */
export async function observeBehaviour(host: Host, reflector: Reflector, options: { allocationSockets?: number } = {}): Promise<ObservedBehaviour> {
  const [primary, otherPort, otherAddress, otherBoth] = reflector.endpoints;
  const own = new Set([...host.addresses, ...host.addresses6]);
  const first = await runProbe<MappingResult>(host, { mode: 'mapping', targets: [primary] });
  const firstSeen = first.seen[0] ?? null;
  if (firstSeen === null) {
    // No UDP at all: what TCP sees still tells whether addresses are translated. @see RFC 3489 §10.1
    const tcp = await runProbe<TcpMappingResult>(host, { mode: 'tcp-mapping', target: primary });
    const natted = tcp.seen !== null && !own.has(splitEndpoint(tcp.seen).address);
    return { natted, mapping: null, filtering: null, rfc3489: 'udp-blocked', portAllocation: null, mappedAddress: tcp.seen };
  }
  const natted = !(own.has(splitEndpoint(firstSeen).address) && port(firstSeen) === first.local);

  const all = await runProbe<MappingResult>(host, { mode: 'mapping', targets: [primary, otherPort, otherAddress, otherBoth] });
  if (all.seen.some((s) => s === null)) throw new LabError(`observe on ${host.name}: a reflector endpoint did not answer: ${JSON.stringify(all)}`);
  const mapping = classifyMapping(all.seen as string[]);

  // Other address and port first (RFC 5780 test II), then other port only (test III).
  const filter = await runProbe<FilteringResult>(host, { mode: 'filtering', target: primary, via: [otherBoth, otherPort] });
  const filtering: EndpointDependence = filter.reached[otherBoth]
    ? 'endpoint-independent'
    : filter.reached[otherPort]
      ? 'address-dependent'
      : 'address-and-port-dependent';

  const allocation = await runProbe<AllocationResult>(host, { mode: 'allocation', target: primary, sockets: options.allocationSockets ?? 5 });
  return {
    natted,
    mapping,
    filtering,
    rfc3489: rfc3489Class(natted, mapping, filtering),
    portAllocation: classifyAllocation(allocation.pairs),
    mappedAddress: firstSeen,
  };
}
