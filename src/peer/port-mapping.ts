/**
 * The peer's own port mapping: at start-up it asks the gateway (PCP, NAT-PMP or UPnP-IGD) to
 * forward its UDP socket's port, within a small budget, beside registration rather than before
 * it. A mapping it gets is a `mapped` candidate in every intent and accept it signs from then on
 * (the rendezvous client asks for candidates per intent); it is renewed before expiry and deleted
 * when the peer closes. Failures — no gateway, double NAT, a refusal — lose one candidate and are
 * logged at debug, nothing more.
 * @see src/portmap (the protocols), src/punch/candidate.ts (`mapped`: like srflx, but promised by the NAT)
 */

import { EventEmitter } from 'node:events';
import { debuglog } from 'node:util';
import { PortMapError } from '../errors.js';
import { mapPort, type MapPortOptions, type PortMapping, type PortMappingInfo } from '../portmap/index.js';
import type { LocalCandidate } from '../punch/candidate.js';

const debug = debuglog('natpunch:portmap');

/** What a peer spends on asking at start-up: a LAN gateway answers PCP/NAT-PMP in milliseconds. */
export const PEER_PORT_MAPPING_BUDGET_MS = 2_000;

/** After a mapping was lost (its renewals failed until it expired), ask again this much later. */
export const PEER_PORT_MAPPING_RETRY_MS = 30_000;

/** `PeerOptions.portMapping` as an object: tuning of the peer's own port mapping. */
export interface PeerPortMappingOptions {
  /** Budget for making the mapping at start-up (default 2 s). */
  timeoutMs?: number;
  /** Wait before asking again after a mapping was lost (default 30 s). */
  retryAfterLossMs?: number;
  /** Requested mapping lifetime, seconds (default: {@link mapPort}'s, 7200 s). */
  lifetimeSeconds?: number;
  /** The gateway to ask (default: the IPv4 default route's gateway). */
  gateway?: string;
  /** Which protocols may be used (default all three: PCP, NAT-PMP, UPnP-IGD). */
  methods?: MapPortOptions['methods'];
}

export interface PeerPortMappingEvents {
  /** A mapping was made, or its external endpoint changed on renewal. */
  mapped: [info: PortMappingInfo];
  /** Making or keeping the mapping failed; the peer goes on without the candidate. */
  failed: [error: PortMapError];
}

export class PeerPortMapping extends EventEmitter<PeerPortMappingEvents> {
  readonly #closing = new AbortController();
  readonly #internalPort: number;
  readonly #options: PeerPortMappingOptions;
  readonly #map: typeof mapPort;
  #mapping: PortMapping | undefined;
  #retry: NodeJS.Timeout | undefined;
  /** Why there is no mapping, when asking failed or it was lost. */
  error: PortMapError | undefined;
  /** Settles (never rejects) once the start-up attempt is over. */
  readonly settled: Promise<void>;

  constructor(internalPort: number, options: PeerPortMappingOptions = {}, map: typeof mapPort = mapPort) {
    super();
    this.#internalPort = internalPort;
    this.#options = options;
    this.#map = map;
    this.settled = this.#ask();
  }

  /** One mapPort attempt; never rejects. */
  #ask(): Promise<void> {
    const options = this.#options;
    return this.#map({
      protocol: 'udp', internalPort: this.#internalPort, signal: this.#closing.signal,
      timeoutMs: options.timeoutMs ?? PEER_PORT_MAPPING_BUDGET_MS,
      ...(options.lifetimeSeconds ? { lifetimeSeconds: options.lifetimeSeconds } : {}),
      ...(options.gateway ? { gateway: options.gateway } : {}),
      ...(options.methods ? { methods: options.methods } : {}),
    }).then((mapping) => this.#hold(mapping), (error: Error) => {
      if (this.#closing.signal.aborted) return;
      debug('no port mapping: %s', error.message);
      this.error = error instanceof PortMapError ? error : new PortMapError('no-gateway', `port mapping: ${error.message}`, { cause: error });
      this.emit('failed', this.error);
    });
  }

  #hold(mapping: PortMapping): void {
    if (this.#closing.signal.aborted) {
      void mapping.close().catch(() => undefined);
      return;
    }
    this.#mapping = mapping;
    this.error = undefined;
    debug('UDP %d mapped to %s:%d by %s for %d s', this.#internalPort, mapping.externalAddress, mapping.externalPort, mapping.method, mapping.lifetimeSeconds);
    mapping.on('changed', () => {
      debug('mapping moved to %s:%d', mapping.externalAddress, mapping.externalPort);
      this.emit('mapped', mapping.info());
    });
    mapping.on('renew-failed', (error, final) => {
      debug('renewal failed%s: %s', final ? ' for good' : '', error.message);
      if (!final) return;
      this.#mapping = undefined;
      this.error = error;
      this.emit('failed', error);
      // The gateway did map for us once (a reboot, a DHCP change on its WAN): ask again, once,
      // after a pause. A gateway that never mapped is not asked again.
      this.#retry = setTimeout(() => void this.#ask(), this.#options.retryAfterLossMs ?? PEER_PORT_MAPPING_RETRY_MS);
      this.#retry.unref();
    });
    this.emit('mapped', mapping.info());
  }

  /** The live mapping, or null. */
  get info(): PortMappingInfo | null {
    return this.#mapping?.info() ?? null;
  }

  /** The `mapped` candidate to sign, while a mapping lives. */
  candidate(): LocalCandidate | undefined {
    const m = this.#mapping;
    return m ? { type: 'mapped', address: { family: 4, address: m.externalAddress, port: m.externalPort } } : undefined;
  }

  /** Stop asking, and delete a mapping held (bounded by portmap's DELETE_BUDGET_MS). */
  async close(): Promise<void> {
    this.#closing.abort();
    clearTimeout(this.#retry);
    const mapping = this.#mapping;
    this.#mapping = undefined;
    if (mapping) await mapping.close().catch((error: Error) => debug('%s', error.message));
  }
}
