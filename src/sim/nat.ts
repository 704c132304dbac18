/**
 * A NAT's UDP state machine in RFC 4787's terms: mappings, filtering, port assignment,
 * refresh and hairpinning. Pure state: it decides what becomes of a packet and never sends
 * one (src/sim/network.ts moves the packets). TCP uses its mappings and port assignment too
 * (`protocol: 'tcp'`); TCP's filtering is per connection, in src/sim/tcp-conntrack.ts.
 *
 * @see RFC 4787 §4.1 (mapping), §4.2.1 (port assignment), §4.3 (mapping refresh), §5 (filtering), §6 (hairpinning)
 */
import { SimError } from '../errors.js';
import type { Prng } from './prng.js';

/** RFC 4787 §4.1 (mapping) and §5 (filtering) share these three words. */
export type EndpointDependence = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent';

/**
 * How the external port of a new mapping is chosen (RFC 4787 §4.2.1).
 * - preserving: the internal port when no live mapping holds it, otherwise random (as the lab's
 *   Linux routers do);
 * - sequential: a counter shared by every new mapping of this NAT, `base + k·delta` modulo `count`
 *   ports (the lab's symmetric-seq: 40000, 40001, …);
 * - random: uniform in [min, max].
 */
export type PortAssignment =
  | { kind: 'preserving' }
  | { kind: 'sequential'; base: number; delta: number; count: number }
  | { kind: 'random'; min: number; max: number };

export interface NatBehaviour {
  /** False for a stateful firewall in front of public addresses: no translation, filtering only. */
  translate: boolean;
  /** RFC 4787 §4.1; REQ-1 asks for endpoint-independent. */
  mapping: EndpointDependence;
  /** RFC 4787 §5; REQ-8 recommends endpoint-independent or address-dependent. */
  filtering: EndpointDependence;
  portAssignment: PortAssignment;
  /**
   * RFC 4787 §6. When on, a packet from inside to one of the NAT's own mappings is translated
   * as if it went out (REQ-9a: the receiver sees the sender's external address and port) and
   * delivered to the mapping's owner without filtering, as the lab's DNAT on the LAN side does.
   * When off it is dropped.
   */
  hairpin: boolean;
  /** Idle time after which a mapping (and every permission on it) is forgotten. RFC 4787 REQ-5 asks for ≥ 2 min; the lab's default is 120 s. */
  mappingTimeoutMs: number;
  /** RFC 4787 REQ-6: outbound packets always refresh a mapping; inbound ones only when this is true. */
  inboundRefresh: boolean;
  /** Drop all UDP, both ways (the lab's `udp-blocked`: a NAT for TCP, a wall for UDP). */
  blockUdp: boolean;
}

export interface Endpoint {
  address: string;
  port: number;
}

/**
 * The transport a mapping is for. UDP and TCP mappings live in separate tables, as Linux keeps
 * them (a port held for UDP is free for TCP); a sequential allocator's counter is shared by both,
 * as the lab's `numgen` counts every new flow (NATLAB-FACTS).
 */
export type Protocol = 'udp' | 'tcp';

export interface MappingView {
  protocol: Protocol;
  internal: Endpoint;
  external: Endpoint;
  /** Who may send in: remote keys ("ip" or "ip:port", by filtering), empty for endpoint-independent filtering. */
  permissions: string[];
  expiresAt: number;
}

interface Mapping {
  key: string;
  protocol: Protocol;
  internal: Endpoint;
  external: Endpoint;
  expiresAt: number;
  /** Remote address (ADF) or address:port (APDF) -> when the permission lapses. */
  permissions: Map<string, number>;
}

const MAX_PORT_TRIES = 1000;

export function endpointKey(e: Endpoint): string {
  return `${e.address}:${e.port}`;
}

/** A table key for an endpoint of `protocol` (UDP's keys are plain "ip:port", as before TCP existed). */
function externalKey(e: Endpoint, protocol: Protocol): string {
  return protocol === 'udp' ? endpointKey(e) : `tcp/${endpointKey(e)}`;
}

export class Nat {
  readonly behaviour: Readonly<NatBehaviour>;
  /** The address mappings are made on (for a firewall, unused: endpoints keep their own). */
  readonly externalAddress: string;
  readonly #prng: Prng;
  /** By mapping key (the internal endpoint, plus the remote as mapping behaviour dictates). */
  readonly #byKey = new Map<string, Mapping>();
  /** By external endpoint, for inbound packets. */
  readonly #byExternal = new Map<string, Mapping>();
  #sequence = 0;
  /**
   * New mappings refused because no external port was free. Without port overloading (REQ-3) a
   * NAT holds one mapping per port, so a sequential NAT's 1000 ports run out after 1000 live
   * mappings, which a birthday spray from behind it (one mapping per probe) reaches. Linux would
   * reuse a port toward another destination; the sim drops the packet and counts it here.
   */
  portsExhausted = 0;

  constructor(behaviour: NatBehaviour, options: { externalAddress: string; prng: Prng }) {
    if (!(behaviour.mappingTimeoutMs > 0)) throw new SimError(`nat: mappingTimeoutMs is ${behaviour.mappingTimeoutMs}, expected a positive number of ms`);
    this.behaviour = { ...behaviour };
    this.externalAddress = options.externalAddress;
    this.#prng = options.prng;
  }

  /**
   * An outbound packet from `internal` to `remote` at `now`: the external endpoint it leaves
   * from (creating or refreshing the mapping and opening the filter toward `remote`), or
   * undefined when the NAT drops it: UDP blocked, or a new mapping and no free port for it
   * (`portsExhausted`).
   */
  outbound(internal: Endpoint, remote: Endpoint, now: number, protocol: Protocol = 'udp'): Endpoint | undefined {
    const b = this.behaviour;
    if (b.blockUdp && protocol === 'udp') return undefined;
    const key = this.#mappingKey(internal, remote, protocol);
    let mapping = this.#live(this.#byKey.get(key), now);
    if (mapping === undefined) {
      const port = b.translate ? this.#assignPort(internal.port, now, protocol) : internal.port;
      if (port === undefined) {
        this.portsExhausted++;
        return undefined;
      }
      const external = b.translate ? { address: this.externalAddress, port } : { ...internal };
      mapping = { key, protocol, internal: { ...internal }, external, expiresAt: 0, permissions: new Map() };
      this.#byKey.set(key, mapping);
      this.#byExternal.set(externalKey(external, protocol), mapping);
    }
    // RFC 4787 REQ-6: outbound traffic refreshes the mapping, and the filter opens toward
    // where it went (§5), for as long as the mapping lives.
    mapping.expiresAt = now + b.mappingTimeoutMs;
    const permission = this.#permissionKey(remote);
    if (permission !== undefined) mapping.permissions.set(permission, mapping.expiresAt);
    return { ...mapping.external };
  }

  /**
   * An inbound packet from `remote` to `external` at `now`: the internal endpoint it is
   * delivered to, or undefined when no live mapping admits it (RFC 4787 §5).
   */
  inbound(remote: Endpoint, external: Endpoint, now: number): Endpoint | undefined {
    const b = this.behaviour;
    if (b.blockUdp) return undefined;
    const mapping = this.#live(this.#byExternal.get(externalKey(external, 'udp')), now);
    if (mapping === undefined) return undefined;
    const permission = this.#permissionKey(remote);
    if (permission !== undefined) {
      const until = mapping.permissions.get(permission);
      if (until === undefined || until <= now) return undefined;
    }
    if (b.inboundRefresh) {
      // Refreshes the mapping and the permission it came in on, as conntrack does a flow.
      mapping.expiresAt = now + b.mappingTimeoutMs;
      if (permission !== undefined) mapping.permissions.set(permission, mapping.expiresAt);
    }
    return { ...mapping.internal };
  }

  /**
   * A packet from `internal` to `external`, one of this NAT's own external endpoints
   * (RFC 4787 §6): where it appears to come from and whom it reaches, or undefined when the
   * NAT does not hairpin or nothing is mapped there.
   */
  hairpin(internal: Endpoint, external: Endpoint, now: number): { from: Endpoint; to: Endpoint } | undefined {
    if (!this.behaviour.hairpin || this.behaviour.blockUdp) return undefined;
    const target = this.#live(this.#byExternal.get(externalKey(external, 'udp')), now);
    if (target === undefined) return undefined;
    const from = this.outbound(internal, external, now);
    return from && { from, to: { ...target.internal } };
  }

  /** Whether `address` is one this NAT maps onto (packets to it are for the NAT, not beyond). */
  ownsAddress(address: string): boolean {
    return this.behaviour.translate && address === this.externalAddress;
  }

  /** Forget every mapping and permission, as a router reboot does; the sequential counter restarts too. */
  flush(): void {
    this.#byKey.clear();
    this.#byExternal.clear();
    this.#sequence = 0;
  }

  /** The live mappings at `now`, for tests and traces. */
  mappings(now: number): MappingView[] {
    return [...this.#byKey.values()].filter((m) => m.expiresAt > now).map((m) => ({
      protocol: m.protocol, internal: { ...m.internal }, external: { ...m.external }, expiresAt: m.expiresAt,
      permissions: [...m.permissions].filter(([, until]) => until > now).map(([k]) => k),
    }));
  }

  #live(mapping: Mapping | undefined, now: number): Mapping | undefined {
    if (mapping === undefined || mapping.expiresAt > now) return mapping;
    this.#byKey.delete(mapping.key);
    this.#byExternal.delete(externalKey(mapping.external, mapping.protocol));
    return undefined;
  }

  #mappingKey(internal: Endpoint, remote: Endpoint, protocol: Protocol): string {
    const local = externalKey(internal, protocol);
    switch (this.behaviour.mapping) {
      case 'endpoint-independent': return local;
      case 'address-dependent': return `${local}>${remote.address}`;
      case 'address-and-port-dependent': return `${local}>${endpointKey(remote)}`;
    }
  }

  #permissionKey(remote: Endpoint): string | undefined {
    switch (this.behaviour.filtering) {
      case 'endpoint-independent': return undefined;
      case 'address-dependent': return remote.address;
      case 'address-and-port-dependent': return endpointKey(remote);
    }
  }

  /** Whether an external port is free: no live mapping holds it (RFC 4787 REQ-3: no port overloading). */
  #free(port: number, now: number, protocol: Protocol): boolean {
    return this.#live(this.#byExternal.get(externalKey({ address: this.externalAddress, port }, protocol)), now) === undefined;
  }

  /** A free external port for a new mapping, or undefined when MAX_PORT_TRIES draws found none. */
  #assignPort(internalPort: number, now: number, protocol: Protocol): number | undefined {
    const a = this.behaviour.portAssignment;
    if (a.kind === 'preserving' && this.#free(internalPort, now, protocol)) return internalPort;
    for (let i = 0; i < MAX_PORT_TRIES; i++) {
      const port = a.kind === 'sequential'
        ? a.base + ((this.#sequence++ * a.delta) % a.count + a.count) % a.count
        : a.kind === 'random' ? this.#prng.int(a.min, a.max) : this.#prng.int(1024, 65535);
      if (this.#free(port, now, protocol)) return port;
    }
    return undefined;
  }
}
