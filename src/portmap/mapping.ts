/**
 * A port mapping held on a gateway: what it maps, renewed before it expires and deleted on
 * close, whichever protocol made it. The protocol sits behind a small driver; the schedule is
 * the TURN client's (a refresh that fails is retried while the mapping still lives).
 * @see RFC 6886 §3.3 (renew at half the lifetime), RFC 6887 §11.2.1 (at 1/2 to 5/8), §15 (delete: lifetime 0)
 */

import { EventEmitter } from 'node:events';
import { PortMapError } from '../errors.js';
import { type Clock, realClock } from '../clock.js';
import { deadline } from '../deadline.js';
import { RefreshSchedule } from '../turn/refresh-schedule.js';
import type { MappingProtocol } from './nat-pmp-message.js';

/** A port-mapping protocol: PCP (RFC 6887), NAT-PMP (RFC 6886) or UPnP-IGD. */
export type PortMapMethod = 'pcp' | 'nat-pmp' | 'upnp-igd';
export const PORT_MAP_METHODS: readonly PortMapMethod[] = ['pcp', 'nat-pmp', 'upnp-igd'];

/** What a gateway granted. */
export interface Grant {
  /** The gateway's external address. */
  externalAddress: string;
  /** The external port mapped to the internal one. */
  externalPort: number;
  /** Seconds the mapping lasts unless renewed. */
  lifetimeSeconds: number;
  /** The gateway's epoch shows it lost its mappings since its last answer (RFC 6887 §8.5). */
  gatewayRestarted?: boolean;
}

/** One protocol's way to hold a mapping. */
export interface MappingDriver {
  readonly method: PortMapMethod;
  readonly gateway: string;
  /** Create or renew the mapping for `lifetimeSeconds`. */
  map(lifetimeSeconds: number, signal?: AbortSignal): Promise<Grant>;
  /** Delete it (lifetime 0). */
  unmap(signal?: AbortSignal): Promise<void>;
  /** When to renew a mapping granted for `lifetimeSeconds`, in ms from now. */
  renewDelayMs(lifetimeSeconds: number): number;
  /** Release sockets; the mapping itself is left as it is. */
  close(): void;
}

/** The least a renewal may take, even for a mapping about to expire. */
export const RENEW_MIN_BUDGET_MS = 2_000;

/** How long close() spends deleting the mapping before giving up (it then expires on its own). */
export const DELETE_BUDGET_MS = 3_000;

export interface PortMappingEvents {
  /** Renewed; `grant` is what the gateway granted this time. */
  renewed: [grant: Grant];
  /** The external address or port changed on a renewal (a gateway reboot, or a new WAN address): re-announce it. */
  changed: [grant: Grant];
  /** A renewal failed; `final` when the mapping is, or is about to be, gone. */
  'renew-failed': [error: PortMapError, final: boolean];
}

/** What a port mapping maps: `peer.portMapping`, the 'port-mapping' event, `PortMapping.info()`. */
export interface PortMappingInfo {
  /** The protocol that made it. */
  method: PortMapMethod;
  /** 'udp' or 'tcp'. */
  protocol: MappingProtocol;
  /** The local port it forwards to. */
  internalPort: number;
  /** The gateway holding it. */
  gateway: string;
  /** The gateway's external address. */
  externalAddress: string;
  /** The external port others reach. */
  externalPort: number;
  /** Seconds the gateway granted at the last (re)mapping. */
  lifetimeSeconds: number;
}

/**
 * A port mapping held on a gateway, from {@link mapPort}: renewed by itself before it expires,
 * deleted by {@link PortMapping.close}.
 *
 * Events:
 * - `'renewed'` `(grant: Grant)`: renewed; `grant` is what the gateway granted this time.
 * - `'changed'` `(grant: Grant)`: the external address or port changed on a renewal.
 * - `'renew-failed'` `(error: PortMapError, final: boolean)`: a renewal failed; `final` when the
 *   mapping is, or is about to be, gone.
 */
export class PortMapping extends EventEmitter<PortMappingEvents> implements PortMappingInfo {
  /** The protocol that made it. */
  readonly method: PortMapMethod;
  /** 'udp' or 'tcp'. */
  readonly protocol: MappingProtocol;
  /** The local port it forwards to. */
  readonly internalPort: number;
  /** The gateway holding it. */
  readonly gateway: string;
  /** The gateway's external address (may change on renewal: 'changed'). */
  externalAddress: string;
  /** The external port others reach (may change on renewal: 'changed'). */
  externalPort: number;
  /** Seconds the gateway granted at the last (re)mapping. */
  lifetimeSeconds: number;
  /** `clock.now()` at which the mapping expires unless renewed. */
  expiresAt: number;
  readonly #driver: MappingDriver;
  readonly #clock: Clock;
  readonly #requestedLifetime: number;
  readonly #schedule: RefreshSchedule;
  #closed: Promise<void> | undefined;

  /** @internal Made by {@link mapPort}. */
  constructor(driver: MappingDriver, grant: Grant, options: { protocol: MappingProtocol; internalPort: number; requestedLifetimeSeconds: number; clock?: Clock }) {
    super();
    this.#driver = driver;
    this.#clock = options.clock ?? realClock;
    this.#requestedLifetime = options.requestedLifetimeSeconds;
    this.method = driver.method;
    this.gateway = driver.gateway;
    this.protocol = options.protocol;
    this.internalPort = options.internalPort;
    this.externalAddress = grant.externalAddress;
    this.externalPort = grant.externalPort;
    this.lifetimeSeconds = grant.lifetimeSeconds;
    this.expiresAt = this.#clock.now() + grant.lifetimeSeconds * 1000;
    this.#schedule = new RefreshSchedule({
      clock: this.#clock,
      run: async () => (await this.renew()).lifetimeSeconds,
      delayMs: (lifetime) => driver.renewDelayMs(lifetime),
      onError: (error, final) => this.emit('renew-failed', asPortMapError(error, final, this), final),
    });
    this.#schedule.restart(grant.lifetimeSeconds);
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /**
   * Renew now (the schedule does this by itself before expiry). One attempt retransmits on its
   * protocol's schedule until the mapping would expire (at least RENEW_MIN_BUDGET_MS) or `signal`.
   */
  async renew(signal?: AbortSignal): Promise<Grant> {
    if (this.#closed) throw new PortMapError('lost', `${this.#describe()}: closed`, { method: this.method });
    const limit = deadline(Math.max(RENEW_MIN_BUDGET_MS, this.expiresAt - this.#clock.now()), signal);
    let grant: Grant;
    try {
      grant = await this.#driver.map(this.#requestedLifetime, limit.signal);
    } finally {
      limit.clear();
    }
    const changed = grant.externalAddress !== this.externalAddress || grant.externalPort !== this.externalPort;
    this.externalAddress = grant.externalAddress;
    this.externalPort = grant.externalPort;
    this.lifetimeSeconds = grant.lifetimeSeconds;
    this.expiresAt = this.#clock.now() + grant.lifetimeSeconds * 1000;
    this.emit('renewed', grant);
    if (changed) this.emit('changed', grant);
    return grant;
  }

  /**
   * Stop renewing and delete the mapping on the gateway (lifetime 0). Resolves once the gateway
   * confirmed it; rejects with a PortMapError when it could not be deleted (it then expires at
   * `expiresAt` by itself). Calling it again returns the same promise.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#schedule.stop();
      const limit = deadline(DELETE_BUDGET_MS);
      try {
        await this.#driver.unmap(limit.signal);
      } catch (error) {
        const left = Math.max(0, Math.round((this.expiresAt - this.#clock.now()) / 1000));
        throw new PortMapError('lost', `${this.#describe()}: could not delete the mapping (${(error as Error).message}); it expires by itself in ${left} s`, { method: this.method, cause: error });
      } finally {
        limit.clear();
        this.#driver.close();
      }
    })();
    return this.#closed;
  }

  /** A plain copy of what it maps now. */
  info(): PortMappingInfo {
    const { method, protocol, internalPort, gateway, externalAddress, externalPort, lifetimeSeconds } = this;
    return { method, protocol, internalPort, gateway, externalAddress, externalPort, lifetimeSeconds };
  }

  #describe(): string {
    return `${this.method} mapping ${this.protocol.toUpperCase()} ${this.externalAddress}:${this.externalPort} -> :${this.internalPort} at ${this.gateway}`;
  }
}

function asPortMapError(error: Error, final: boolean, mapping: PortMapping): PortMapError {
  if (error instanceof PortMapError && !final) return error;
  const what = `${mapping.method} mapping ${mapping.protocol.toUpperCase()} ${mapping.externalAddress}:${mapping.externalPort}`;
  if (final) return new PortMapError('lost', `${what}: renewal failed and the mapping has expired or is about to (${error.message}); map the port again`, { method: mapping.method, cause: error });
  return new PortMapError('no-gateway', `${what}: renewal failed (${error.message}); retrying while the mapping lives`, { method: mapping.method, cause: error });
}
