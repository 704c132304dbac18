/**
 * The in-process network: a tree of routers with hosts at the leaves, as pion's vnet builds
 * it. The root router is "the internet"; a router below it may carry a NAT (src/sim/nat.ts)
 * between its upstream side and the nodes below it; each node hangs off its router by a Link
 * (latency, jitter, loss). UDP datagrams and TCP segments exist, only between sim sockets
 * (src/sim/socket.ts, src/sim/tcp-socket.ts): nothing here touches a real socket. A TCP
 * segment goes through the NAT's conntrack (src/sim/tcp-conntrack.ts) instead of its UDP
 * filter, and carries an IP TTL that each router decrements (so a low-TTL SYN can die in the
 * core, as priming needs); UDP datagrams carry none.
 *
 * Forwarding at a router, for a datagram from below:
 * 1. the destination is below this router (another host on the LAN): straight down, untranslated;
 * 2. it is this NAT's own external address: hairpinning (RFC 4787 §6), or a drop;
 * 3. otherwise up, through the NAT's outbound translation (RFC 4787 §4.1); the root has no "up",
 *    so an address nobody owns (a private address from another LAN) is dropped there.
 * And from above: through the NAT's inbound filter (RFC 4787 §5), then down.
 */
import { SimError } from '../errors.js';
import { Link, type LinkOptions } from './link.js';
import { Nat, type NatBehaviour, type Endpoint, endpointKey } from './nat.js';
import { Prng } from './prng.js';
import type { VirtualClock } from './virtual-clock.js';
import type { SimUdpSocket } from './socket.js';
import { TcpConntrack } from './tcp-conntrack.js';
import { TcpStack } from './tcp-stack.js';
import type { TcpHeader } from './tcp-segment.js';

/** A UDP datagram, or a TCP segment when `tcp` is set. */
export interface Datagram {
  src: Endpoint;
  dst: Endpoint;
  payload: Buffer;
  /** The TCP header: this is a segment, not a datagram. */
  tcp?: TcpHeader;
  /** IP TTL, decremented by each router (TCP segments only; a datagram without one never expires). */
  ttl?: number;
}

/** Why a packet was dropped; 'no-port': its NAT had no free external port for a new mapping (Nat.portsExhausted). */
export type DropReason = 'loss' | 'no-route' | 'filtered' | 'udp-blocked' | 'no-hairpin' | 'no-socket' | 'ttl-expired' | 'no-port';

/** What `Network.trace` is told: every hop's decision, for debugging a scenario. */
export interface TraceEvent {
  at: number;
  node: string;
  event: 'send' | 'translate' | 'deliver' | 'drop';
  datagram: Datagram;
  reason?: DropReason;
}

export interface NetworkOptions {
  clock: VirtualClock;
  /** Seed of every random draw in the network (default 1). */
  seed?: number | string;
}

/** Ephemeral ports a host picks for `bind(0)`: Linux's default ip_local_port_range. */
export const EPHEMERAL_PORTS = { min: 32768, max: 60999 } as const;

export class Network {
  readonly clock: VirtualClock;
  readonly prng: Prng;
  /** The root router: no NAT, no upstream. */
  readonly internet: Router;
  readonly stats: Record<DropReason | 'sent' | 'delivered', number> = {
    sent: 0, delivered: 0, loss: 0, 'no-route': 0, filtered: 0, 'udp-blocked': 0, 'no-hairpin': 0, 'no-socket': 0, 'ttl-expired': 0, 'no-port': 0,
  };
  /** Set to observe every hop. */
  trace: ((event: TraceEvent) => void) | undefined;
  readonly #names = new Set<string>();

  constructor(options: NetworkOptions) {
    this.clock = options.clock;
    this.prng = new Prng(options.seed ?? 1);
    this.internet = new Router(this, 'internet', undefined, undefined, undefined);
    this.#names.add('internet');
  }

  /** A router below `parent` (default: the internet) with `wanAddress` upstream and, optionally, a NAT. */
  /**
   * A router below `parent` (default: the internet) with `wanAddress` upstream and, optionally, a
   * NAT; `tcpUnsolicited` is what its NAT does with an unsolicited TCP segment (default 'drop',
   * as the lab's RouterOptions).
   */
  addRouter(options: { name: string; parent?: Router; wanAddress: string; nat?: NatBehaviour; link?: LinkOptions; tcpUnsolicited?: 'drop' | 'rst' }): Router {
    const parent = options.parent ?? this.internet;
    const link = new Link(options.link ?? {}, this.prng.derive(`link/${this.#claim(options.name)}`));
    const nat = options.nat && new Nat(options.nat, { externalAddress: options.wanAddress, prng: this.prng.derive(`nat/${options.name}`) });
    const tcp = nat && new TcpConntrack(nat, { unsolicited: options.tcpUnsolicited ?? 'drop' });
    const router = new Router(this, options.name, parent, link, nat, options.wanAddress, tcp);
    parent.attach(router);
    return router;
  }

  /** A host below `parent` with these addresses (the first is the source of sockets bound to 0.0.0.0). */
  addHost(options: { name: string; parent?: Router; addresses: readonly string[]; link?: LinkOptions }): Host {
    if (options.addresses.length === 0) throw new SimError(`host ${options.name}: needs at least one address`);
    const parent = options.parent ?? this.internet;
    const link = new Link(options.link ?? {}, this.prng.derive(`link/${this.#claim(options.name)}`));
    const host = new Host(this, options.name, parent, link, options.addresses, this.prng.derive(`host/${options.name}`));
    parent.attach(host);
    return host;
  }

  /** @internal */
  emit(node: string, event: TraceEvent['event'], datagram: Datagram, reason?: DropReason): void {
    if (event === 'drop') this.stats[reason!]++;
    if (event === 'deliver') this.stats.delivered++;
    if (event === 'send') this.stats.sent++;
    this.trace?.({ at: this.clock.now(), node, event, datagram, ...(reason ? { reason } : {}) });
  }

  /** @internal Carries `datagram` over `link`, then hands it to `arrive` (or loses it). */
  carry(link: Link, node: string, datagram: Datagram, arrive: (d: Datagram) => void): void {
    const delay = link.transit();
    if (delay === undefined) {
      this.emit(node, 'drop', datagram, 'loss');
      return;
    }
    this.clock.setTimeout(() => arrive(datagram), delay);
  }

  #claim(name: string): string {
    if (this.#names.has(name)) throw new SimError(`network: a node named ${JSON.stringify(name)} exists already`);
    this.#names.add(name);
    return name;
  }
}

export type Node = Router | Host;

export class Router {
  readonly children: Node[] = [];

  /** @internal Use Network.addRouter. */
  constructor(
    readonly network: Network,
    readonly name: string,
    readonly parent: Router | undefined,
    readonly uplink: Link | undefined,
    readonly nat: Nat | undefined,
    readonly wanAddress?: string,
    /** The NAT's TCP connection tracking (present whenever `nat` is). */
    readonly tcp?: TcpConntrack,
  ) {}

  /** @internal */
  attach(child: Node): void {
    this.children.push(child);
  }

  /** Whether a datagram to `address` is for this router or something below it. */
  reaches(address: string): boolean {
    if (this.nat?.behaviour.translate) return this.nat.ownsAddress(address);
    return address === this.wanAddress || this.children.some((c) => c.reaches(address));
  }

  /** Forget every NAT mapping, as a reboot does (NATLAB-FACTS: `conntrack -F` plus flushing the maps). */
  reboot(): void {
    this.nat?.flush();
    this.tcp?.flush();
  }

  /** @internal A datagram arriving from a node below. */
  fromBelow(child: Node, arriving: Datagram): void {
    const now = this.network.clock.now();
    const d = this.#hop(arriving);
    if (d === undefined) return;
    const sibling = this.#childReaching(d.dst.address);
    if (sibling !== undefined && sibling !== child) {
      this.#down(sibling, d);
      return;
    }
    if (d.tcp && this.nat?.ownsAddress(d.dst.address)) {
      // TCP hairpinning is not modelled (docs/sim.md).
      this.network.emit(this.name, 'drop', d, 'no-hairpin');
      return;
    }
    if (this.nat?.ownsAddress(d.dst.address)) {
      const looped = this.nat.hairpin(d.src, d.dst, now);
      if (looped === undefined) {
        this.network.emit(this.name, 'drop', d, this.nat.behaviour.blockUdp ? 'udp-blocked' : 'no-hairpin');
        return;
      }
      const translated = { ...d, src: looped.from, dst: looped.to };
      this.network.emit(this.name, 'translate', translated);
      const target = this.#childReaching(looped.to.address);
      if (target) this.#down(target, translated);
      return;
    }
    if (this.parent === undefined || this.uplink === undefined) {
      this.network.emit(this.name, 'drop', d, 'no-route');
      return;
    }
    let out = d;
    if (d.tcp && this.tcp) {
      const verdict = this.tcp.outbound(d, now);
      if (verdict.action !== 'forward') {
        this.network.emit(this.name, 'drop', d, verdict.action === 'drop' ? verdict.reason : 'filtered');
        return;
      }
      out = verdict.datagram;
      if (this.nat!.behaviour.translate) this.network.emit(this.name, 'translate', out);
    } else if (this.nat) {
      const src = this.nat.outbound(d.src, d.dst, now);
      if (src === undefined) {
        this.network.emit(this.name, 'drop', d, this.nat.behaviour.blockUdp ? 'udp-blocked' : 'no-port');
        return;
      }
      out = { ...d, src };
      if (this.nat.behaviour.translate) this.network.emit(this.name, 'translate', out);
    }
    this.#up(out);
  }

  /** @internal A datagram arriving from upstream. */
  fromAbove(arriving: Datagram): void {
    const d = this.#hop(arriving);
    if (d === undefined) return;
    let inside = d;
    if (d.tcp && this.tcp) {
      const verdict = this.tcp.inbound(d, this.network.clock.now());
      if (verdict.action !== 'forward') {
        this.network.emit(this.name, 'drop', d, verdict.action === 'drop' ? verdict.reason : 'filtered');
        if (verdict.action === 'reject') {
          // `reject with tcp reset`: the router answers from the address the segment was for.
          this.network.emit(this.name, 'send', verdict.reset);
          this.#up(verdict.reset);
        }
        return;
      }
      inside = verdict.datagram;
      if (this.nat!.behaviour.translate) this.network.emit(this.name, 'translate', inside);
    } else if (this.nat) {
      const internal = this.nat.inbound(d.src, d.dst, this.network.clock.now());
      if (internal === undefined) {
        this.network.emit(this.name, 'drop', d, this.nat.behaviour.blockUdp ? 'udp-blocked' : 'filtered');
        return;
      }
      inside = { ...d, dst: internal };
      if (this.nat.behaviour.translate) this.network.emit(this.name, 'translate', inside);
    }
    const target = this.#childReaching(inside.dst.address);
    if (target === undefined) {
      this.network.emit(this.name, 'drop', inside, 'no-route');
      return;
    }
    this.#down(target, inside);
  }

  /** Up to the parent router (the root has none: dropped). */
  #up(d: Datagram): void {
    const parent = this.parent;
    if (parent === undefined || this.uplink === undefined) {
      this.network.emit(this.name, 'drop', d, 'no-route');
      return;
    }
    this.network.carry(this.uplink, this.name, d, (x) => parent.fromBelow(this, x));
  }

  /** Forwarding costs one TTL: a segment that arrives with TTL 1 dies here (no ICMP is modelled). */
  #hop(d: Datagram): Datagram | undefined {
    if (d.ttl === undefined) return d;
    if (d.ttl <= 1) {
      this.network.emit(this.name, 'drop', d, 'ttl-expired');
      return undefined;
    }
    return { ...d, ttl: d.ttl - 1 };
  }

  #childReaching(address: string): Node | undefined {
    return this.children.find((c) => c.reaches(address));
  }

  #down(child: Node, d: Datagram): void {
    // Every node but the root has an uplink, and the root is nobody's child.
    this.network.carry(child.uplink!, this.name, d, (x) => child.fromAbove(x));
  }
}

export class Host {
  readonly addresses: readonly string[];
  /** The host's TCP: its sockets, listeners, and RSTs for closed ports. */
  readonly tcp: TcpStack;
  /** Bound sockets by "address:port" (address 0.0.0.0 for a wildcard bind). */
  readonly #sockets = new Map<string, SimUdpSocket>();
  readonly #prng: Prng;

  /** @internal Use Network.addHost. */
  constructor(
    readonly network: Network,
    readonly name: string,
    readonly parent: Router,
    readonly uplink: Link,
    addresses: readonly string[],
    prng: Prng,
  ) {
    this.addresses = [...addresses];
    this.#prng = prng;
    this.tcp = new TcpStack(this, prng.derive('tcp'));
  }

  reaches(address: string): boolean {
    return this.addresses.includes(address);
  }

  /** This host's interface addresses (what `os.networkInterfaces()` would list). */
  interfaceAddresses(): string[] {
    return [...this.addresses];
  }

  /**
   * @internal Claims `address:port` for `socket` (port 0: an ephemeral port, address
   * 0.0.0.0: every address of the host). Returns the bound endpoint or throws EADDRINUSE /
   * EADDRNOTAVAIL as node:dgram reports them.
   */
  bind(socket: SimUdpSocket, address: string, port: number): Endpoint {
    if (address !== '0.0.0.0' && !this.addresses.includes(address)) {
      throw Object.assign(new Error(`bind EADDRNOTAVAIL ${address}:${port} (host ${this.name} has ${this.addresses.join(', ')})`), { code: 'EADDRNOTAVAIL', errno: -99, syscall: 'bind', address, port });
    }
    if (port === 0) port = this.#ephemeralPort(address);
    else if (this.#taken(address, port)) {
      throw Object.assign(new Error(`bind EADDRINUSE ${address}:${port}`), { code: 'EADDRINUSE', errno: -98, syscall: 'bind', address, port });
    }
    this.#sockets.set(`${address}:${port}`, socket);
    return { address, port };
  }

  /** @internal */
  unbind(local: Endpoint): void {
    this.#sockets.delete(endpointKey(local));
  }

  /** @internal A datagram from a socket of this host. */
  send(local: Endpoint, dst: Endpoint, payload: Buffer): void {
    const src = { address: local.address === '0.0.0.0' ? this.addresses[0]! : local.address, port: local.port };
    this.transmit({ src, dst: { ...dst }, payload });
  }

  /** @internal A datagram or segment from this host, its source address already chosen. */
  transmit(d: Datagram): void {
    const dst = d.dst;
    this.network.emit(this.name, 'send', d);
    if (this.reaches(dst.address)) {
      this.network.clock.setTimeout(() => this.fromAbove(d), 0);
      return;
    }
    this.network.carry(this.uplink, this.name, d, (x) => this.parent.fromBelow(this, x));
  }

  /** @internal A datagram for this host. */
  fromAbove(d: Datagram): void {
    if (d.tcp) {
      this.tcp.receive(d);
      return;
    }
    const socket = this.#sockets.get(endpointKey(d.dst)) ?? this.#sockets.get(`0.0.0.0:${d.dst.port}`);
    if (socket === undefined) {
      this.network.emit(this.name, 'drop', d, 'no-socket');
      return;
    }
    this.network.emit(this.name, 'deliver', d);
    socket.deliver(d);
  }

  #taken(address: string, port: number): boolean {
    if (address === '0.0.0.0') return [...this.#sockets.keys()].some((k) => k.endsWith(`:${port}`));
    return this.#sockets.has(`${address}:${port}`) || this.#sockets.has(`0.0.0.0:${port}`);
  }

  #ephemeralPort(address: string): number {
    for (let i = 0; i < 10_000; i++) {
      const port = this.#prng.int(EPHEMERAL_PORTS.min, EPHEMERAL_PORTS.max);
      if (!this.#taken(address, port)) return port;
    }
    throw new SimError(`host ${this.name}: no free ephemeral port`);
  }
}
