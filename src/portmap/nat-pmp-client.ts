/**
 * NAT-PMP client: asks the gateway for its external address and for UDP/TCP mappings, retrying
 * on RFC 6886's schedule, and watches the gateway's epoch for lost state.
 * @see RFC 6886 §3
 */

import { PortMapError } from '../errors.js';
import type { Clock } from '../clock.js';
import { realClock } from '../clock.js';
import { EpochTracker } from './epoch.js';
import type { GatewaySocket } from './gateway-socket.js';
import {
  NatPmpOpcode, NatPmpResultCode, decodeNatPmpResponse, encodeExternalAddressRequest, encodeMapRequest,
  mapOpcode, natPmpResultName, type NatPmpMapRequest, type NatPmpResponseHeader,
} from './nat-pmp-message.js';
import { natPmpSchedule, type ScheduleOptions } from './retransmission.js';

export interface NatPmpClientOptions {
  clock?: Clock;
  /** Bounds each exchange (RFC 6886 §3.1's full schedule takes over two minutes). */
  schedule?: ScheduleOptions & { initialMs?: number; tries?: number };
}

export interface NatPmpMapping {
  internalPort: number;
  externalPort: number;
  lifetimeSeconds: number;
  /** False when the gateway's epoch shows it lost its mappings since the last answer (RFC 6886 §3.6). */
  epochValid: boolean;
}

export class NatPmpClient {
  readonly socket: GatewaySocket;
  readonly #options: NatPmpClientOptions;
  readonly #epoch = new EpochTracker();
  readonly #clock: Clock;

  constructor(socket: GatewaySocket, options: NatPmpClientOptions = {}) {
    this.socket = socket;
    this.#options = options;
    this.#clock = options.clock ?? realClock;
  }

  /** @see RFC 6886 §3.2 */
  async externalAddress(signal?: AbortSignal): Promise<{ address: string; epochValid: boolean }> {
    const response = await this.#exchange(encodeExternalAddressRequest(), NatPmpOpcode.ExternalAddress, 'NAT-PMP external address', signal);
    if (!('externalAddress' in response)) throw new PortMapError('refused', 'NAT-PMP external address: success without an address', { method: 'nat-pmp' });
    return { address: response.externalAddress, epochValid: this.#observe(response) };
  }

  /**
   * Create, renew or (lifetime 0, suggested port 0) delete a mapping.
   * @throws PortMapError `refused` / `unsupported` with the gateway's result code in `status`
   * @see RFC 6886 §3.3, §3.4
   */
  async map(request: NatPmpMapRequest, signal?: AbortSignal): Promise<NatPmpMapping> {
    const what = `NAT-PMP map ${request.protocol.toUpperCase()} ${request.internalPort}`;
    const response = await this.#exchange(encodeMapRequest(request), mapOpcode(request.protocol), what, signal, (r) =>
      // A success for another internal port answers some other request of ours (or a spoofer).
      'internalPort' in r && r.internalPort !== request.internalPort);
    if (!('mappedExternalPort' in response)) throw new PortMapError('refused', `${what}: success without a mapping`, { method: 'nat-pmp' });
    return {
      internalPort: response.internalPort,
      externalPort: response.mappedExternalPort,
      lifetimeSeconds: response.lifetimeSeconds,
      epochValid: this.#observe(response),
    };
  }

  #observe(response: NatPmpResponseHeader): boolean {
    return this.#epoch.observe(response.epochSeconds, this.#clock.now());
  }

  async #exchange(bytes: Uint8Array, opcode: number, what: string, signal: AbortSignal | undefined, ignore?: (r: ReturnType<typeof decodeNatPmpResponse>) => boolean): Promise<ReturnType<typeof decodeNatPmpResponse>> {
    const response = await this.socket.exchange(bytes, natPmpSchedule(this.#options.schedule), (datagram) => {
      const r = decodeNatPmpResponse(datagram);
      if (r.opcode !== opcode || ignore?.(r) === true) return undefined;
      return r;
    }, what, signal);
    if (response.resultCode !== NatPmpResultCode.Success) {
      this.#observe(response);
      const unsupported = response.resultCode === NatPmpResultCode.UnsupportedVersion || response.resultCode === NatPmpResultCode.UnsupportedOpcode;
      throw new PortMapError(unsupported ? 'unsupported' : 'refused',
        `${what}: gateway ${this.socket.gateway} answered ${response.resultCode} (${natPmpResultName(response.resultCode)})${advice(response.resultCode)}`,
        { method: 'nat-pmp', status: response.resultCode });
    }
    return response;
  }
}

function advice(code: number): string {
  switch (code) {
    case NatPmpResultCode.NotAuthorized: return '; port mapping is turned off on the router, or this host or port is not allowed';
    case NatPmpResultCode.NetworkFailure: return '; the router has no external address yet (or, like miniupnpd, refuses while it is a reserved one): try again later';
    case NatPmpResultCode.OutOfResources: return '; the router has no mapping to spare: close others or try later';
    default: return '';
  }
}
