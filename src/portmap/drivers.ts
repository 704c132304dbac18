/**
 * The three protocols as MappingDrivers: how each creates, renews and deletes one mapping.
 * @see RFC 6886 §3.3-3.4, RFC 6887 §11.2-11.2.1 and §15, UPnP WANIPConnection:1 §2.4.16-17
 */

import { PortMapError } from '../errors.js';
import type { Grant, MappingDriver } from './mapping.js';
import type { MappingProtocol } from './nat-pmp-message.js';
import type { NatPmpClient } from './nat-pmp-client.js';
import type { PcpClient } from './pcp-client.js';
import { UpnpErrorCode } from './soap.js';
import type { UpnpIgdClient } from './upnp-igd-client.js';

export interface MappingTarget {
  protocol: MappingProtocol;
  internalPort: number;
}

/** NAT-PMP: renew at half the lifetime, asking for the port it was given. @see RFC 6886 §3.3 */
export class NatPmpDriver implements MappingDriver {
  readonly method = 'nat-pmp';
  readonly #client: NatPmpClient;
  readonly #target: MappingTarget;
  #externalPort: number;

  constructor(client: NatPmpClient, target: MappingTarget) {
    this.#client = client;
    this.#target = target;
    this.#externalPort = target.internalPort;
  }

  get gateway(): string {
    return this.#client.socket.gateway;
  }

  async map(lifetimeSeconds: number, signal?: AbortSignal): Promise<Grant> {
    // RFC 6886 §3.2: the map response names no address; the external address request does.
    const external = await this.#client.externalAddress(signal);
    const mapping = await this.#client.map({ ...this.#target, suggestedExternalPort: this.#externalPort, lifetimeSeconds }, signal);
    this.#externalPort = mapping.externalPort;
    return {
      externalAddress: external.address,
      externalPort: mapping.externalPort,
      lifetimeSeconds: mapping.lifetimeSeconds,
      gatewayRestarted: !(external.epochValid && mapping.epochValid),
    };
  }

  /** RFC 6886 §3.4: lifetime 0 and suggested external port 0 delete the mapping. */
  async unmap(signal?: AbortSignal): Promise<void> {
    await this.#client.map({ ...this.#target, suggestedExternalPort: 0, lifetimeSeconds: 0 }, signal);
  }

  renewDelayMs(lifetimeSeconds: number): number {
    return (lifetimeSeconds * 1000) / 2;
  }

  close(): void {
    this.#client.socket.close();
  }
}

/**
 * PCP: one nonce for the mapping's whole life (renewals and deletion must carry it), renewal at
 * a uniformly random point between 1/2 and 5/8 of the lifetime. @see RFC 6887 §11.2, §11.2.1
 */
export class PcpDriver implements MappingDriver {
  readonly method = 'pcp';
  readonly #client: PcpClient;
  readonly #target: MappingTarget;
  readonly #nonce: Uint8Array;
  readonly #random: () => number;
  #last: { externalAddress: string; externalPort: number } | undefined;

  constructor(client: PcpClient, target: MappingTarget, random: () => number = Math.random) {
    this.#client = client;
    this.#target = target;
    this.#nonce = client.newNonce();
    this.#random = random;
  }

  get gateway(): string {
    return this.#client.socket.gateway;
  }

  async map(lifetimeSeconds: number, signal?: AbortSignal): Promise<Grant> {
    const granted = await this.#client.map({
      ...this.#target,
      nonce: this.#nonce,
      lifetimeSeconds,
      // RFC 6887 §11.2.1: a renewal suggests what was assigned; a first request the internal port.
      suggestedExternalPort: this.#last?.externalPort ?? this.#target.internalPort,
      ...(this.#last ? { suggestedExternalAddress: this.#last.externalAddress } : {}),
    }, signal);
    this.#last = { externalAddress: granted.externalAddress, externalPort: granted.externalPort };
    return { ...granted, gatewayRestarted: !granted.epochValid };
  }

  /** RFC 6887 §15: the same MAP, same nonce, requested lifetime 0. */
  async unmap(signal?: AbortSignal): Promise<void> {
    await this.#client.map({ ...this.#target, nonce: this.#nonce, lifetimeSeconds: 0 }, signal);
  }

  renewDelayMs(lifetimeSeconds: number): number {
    return lifetimeSeconds * 1000 * (0.5 + this.#random() * 0.125);
  }

  close(): void {
    this.#client.socket.close();
  }
}

/** Attempts at another external port when the one asked for is another host's (error 718). */
export const UPNP_CONFLICT_RETRIES = 3;

/**
 * UPnP-IGD: AddPortMapping with a lease, the same call again to renew, DeletePortMapping to
 * close. A router that takes only permanent leases (725) gets lease 0, still renewed as if it
 * had the requested lifetime, and still deleted on close.
 */
export class UpnpIgdDriver implements MappingDriver {
  readonly method = 'upnp-igd';
  readonly #client: UpnpIgdClient;
  readonly #target: MappingTarget;
  readonly #description: string;
  readonly #random: () => number;
  #externalPort: number;
  #permanentOnly = false;
  #mapped = false;

  constructor(client: UpnpIgdClient, target: MappingTarget, description: string, random: () => number = Math.random) {
    this.#client = client;
    this.#target = target;
    this.#description = description;
    this.#random = random;
    this.#externalPort = target.internalPort;
  }

  get gateway(): string {
    return this.#client.gateway;
  }

  async map(lifetimeSeconds: number, signal?: AbortSignal): Promise<Grant> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#client.addPortMapping({
          protocol: this.#target.protocol,
          externalPort: this.#externalPort,
          internalPort: this.#target.internalPort,
          leaseSeconds: this.#permanentOnly ? 0 : lifetimeSeconds,
          description: this.#description,
        }, signal);
        break;
      } catch (error) {
        if (!(error instanceof PortMapError)) throw error;
        if (error.status === UpnpErrorCode.OnlyPermanentLeasesSupported && !this.#permanentOnly) {
          this.#permanentOnly = true;
        } else if (error.status === UpnpErrorCode.ConflictInMappingEntry && !this.#mapped && attempt < UPNP_CONFLICT_RETRIES) {
          this.#externalPort = 1024 + Math.floor(this.#random() * (65536 - 1024));
        } else {
          throw error;
        }
      }
    }
    this.#mapped = true;
    const externalAddress = await this.#client.externalAddress(signal);
    return { externalAddress, externalPort: this.#externalPort, lifetimeSeconds };
  }

  async unmap(signal?: AbortSignal): Promise<void> {
    await this.#client.deletePortMapping(this.#target.protocol, this.#externalPort, signal);
  }

  renewDelayMs(lifetimeSeconds: number): number {
    return (lifetimeSeconds * 1000) / 2;
  }

  close(): void {
    // HTTP requests are one per connection; nothing is held open.
  }
}

/**
 * PCP, and NAT-PMP instead when the gateway answers the first PCP request with UNSUPP_VERSION in
 * either protocol's words (RFC 6887 §9). Decided once, on the first map(); `method` then says
 * which protocol holds the mapping.
 */
export class PcpWithNatPmpFallback implements MappingDriver {
  #current: MappingDriver;
  #fallback: (() => MappingDriver) | undefined;

  constructor(pcp: MappingDriver, fallback: () => MappingDriver) {
    this.#current = pcp;
    this.#fallback = fallback;
  }

  get method(): MappingDriver['method'] {
    return this.#current.method;
  }

  get gateway(): string {
    return this.#current.gateway;
  }

  async map(lifetimeSeconds: number, signal?: AbortSignal): Promise<Grant> {
    const fallback = this.#fallback;
    this.#fallback = undefined;
    try {
      return await this.#current.map(lifetimeSeconds, signal);
    } catch (error) {
      if (fallback === undefined || !(error instanceof PortMapError && error.reason === 'unsupported')) throw error;
      this.#current = fallback();
      return this.#current.map(lifetimeSeconds, signal);
    }
  }

  unmap(signal?: AbortSignal): Promise<void> {
    return this.#current.unmap(signal);
  }

  renewDelayMs(lifetimeSeconds: number): number {
    return this.#current.renewDelayMs(lifetimeSeconds);
  }

  close(): void {
    this.#current.close();
  }
}
