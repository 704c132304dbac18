/**
 * PCP client for the MAP opcode: creates, renews and deletes mappings, checks the mapping nonce
 * of every answer, watches the epoch, and notices a NAT-PMP-only gateway (PCP §9).
 * @see RFC 6887 §8 (client behaviour), §9 (version negotiation), §11 (MAP), §15 (lifetime)
 */

import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import { timingSafeEqual } from 'node:crypto';
import { PortMapError } from '../errors.js';
import { type Clock, realClock } from '../clock.js';
import { EpochTracker } from './epoch.js';
import type { GatewaySocket } from './gateway-socket.js';
import { NAT_PMP_VERSION, NatPmpResultCode, decodeNatPmpResponse, type MappingProtocol } from './nat-pmp-message.js';
import {
  PcpOpcode, PcpResultCode, decodePcpResponse, encodePcpRequest, pcpResultName, type PcpResponse,
} from './pcp-message.js';
import { ANY_IPV4, MAPPING_NONCE, MAP_BODY, decodeMapResponse, encodeMapBody, type PcpMapResponse } from './pcp-map.js';
import { pcpSchedule, type ScheduleOptions } from './retransmission.js';

export interface PcpClientOptions {
  clock?: Clock;
  schedule?: ScheduleOptions & { irtMs?: number; random?: () => number };
  randomBytes?: (n: number) => Uint8Array;
}

export interface PcpMapRequest {
  protocol: MappingProtocol;
  internalPort: number;
  lifetimeSeconds: number;
  /** 0: no preference. */
  suggestedExternalPort?: number;
  suggestedExternalAddress?: string;
  /** The mapping's nonce: renewals and deletion reuse the one it was created with (RFC 6887 §11.2). */
  nonce: Uint8Array;
}

export interface PcpMapping {
  externalAddress: string;
  externalPort: number;
  lifetimeSeconds: number;
  epochValid: boolean;
}

export class PcpClient {
  readonly socket: GatewaySocket;
  readonly #options: PcpClientOptions;
  readonly #clock: Clock;
  readonly #epoch = new EpochTracker();

  constructor(socket: GatewaySocket, options: PcpClientOptions = {}) {
    this.socket = socket;
    this.#options = options;
    this.#clock = options.clock ?? realClock;
  }

  /** A fresh 96-bit mapping nonce. @see RFC 6887 §11.1 */
  newNonce(): Uint8Array {
    return (this.#options.randomBytes ?? cryptoRandomBytes)(MAPPING_NONCE);
  }

  /**
   * One MAP exchange.
   * @throws PortMapError `unsupported` when the gateway speaks only NAT-PMP (status 1; fall back
   *   to it, RFC 6887 §9) or another PCP version; `refused` for any other result code
   * @see RFC 6887 §11.1, §11.3
   */
  async map(request: PcpMapRequest, signal?: AbortSignal): Promise<PcpMapping> {
    const what = `PCP MAP ${request.protocol.toUpperCase()} ${request.internalPort}`;
    const bytes = encodePcpRequest({
      opcode: PcpOpcode.Map,
      requestedLifetimeSeconds: request.lifetimeSeconds,
      clientAddress: this.socket.localAddress,
      body: encodeMapBody({
        nonce: request.nonce,
        protocol: request.protocol,
        internalPort: request.internalPort,
        externalPort: request.suggestedExternalPort ?? 0,
        externalAddress: request.suggestedExternalAddress ?? ANY_IPV4,
      }),
      options: [],
    });
    const answer = await this.socket.exchange(bytes, pcpSchedule(this.#options.schedule), (datagram) => accept(datagram, request), what, signal);
    if (answer.kind === 'nat-pmp') {
      // RFC 6887 §9: a NAT-PMP gateway answers a PCP request with its own UNSUPP_VERSION.
      throw new PortMapError('unsupported', `${what}: gateway ${this.socket.gateway} speaks NAT-PMP, not PCP (it answered version 0 result ${answer.resultCode}); use NAT-PMP`, { method: 'pcp', status: PcpResultCode.UnsuppVersion });
    }
    const response = answer.response;
    const epochValid = this.#epoch.observe(response.epochSeconds, this.#clock.now());
    if (response.resultCode !== PcpResultCode.Success) {
      const lasting = response.lifetimeSeconds > 0 ? ` (the gateway expects this to last ${response.lifetimeSeconds} s)` : '';
      throw new PortMapError(response.resultCode === PcpResultCode.UnsuppVersion ? 'unsupported' : 'refused',
        `${what}: gateway ${this.socket.gateway} answered ${pcpResultName(response.resultCode)}${lasting}${advice(response.resultCode)}`,
        { method: 'pcp', status: response.resultCode });
    }
    const map = response as PcpMapResponse;
    return { externalAddress: map.externalAddress, externalPort: map.externalPort, lifetimeSeconds: map.lifetimeSeconds, epochValid };
  }
}

type Answer = { kind: 'nat-pmp'; resultCode: number } | { kind: 'pcp'; response: PcpMapResponse | PcpResponse };

/**
 * Which datagram answers `request`: a MAP response carrying its nonce, protocol and internal
 * port (RFC 6887 §11.3: otherwise "the response is silently discarded"), or an error too short to
 * carry them (UNSUPP_VERSION, MALFORMED_REQUEST may come as the bare header), or NAT-PMP's
 * Unsupported Version.
 */
function accept(datagram: Uint8Array, request: PcpMapRequest): Answer | undefined {
  if (datagram[0] === NAT_PMP_VERSION) {
    const header = decodeNatPmpResponse(datagram);
    return header.resultCode === NatPmpResultCode.UnsupportedVersion ? { kind: 'nat-pmp', resultCode: header.resultCode } : undefined;
  }
  const response = decodePcpResponse(datagram);
  if (response.resultCode !== PcpResultCode.Success && response.payload.length < MAP_BODY) return { kind: 'pcp', response };
  const map = decodeMapResponse(response);
  if (!timingSafeEqual(map.nonce, request.nonce) || map.protocol !== request.protocol || map.internalPort !== request.internalPort) return undefined;
  return { kind: 'pcp', response: map };
}

function advice(code: number): string {
  switch (code) {
    case PcpResultCode.NotAuthorized: return '; port mapping is turned off on the router, or this host or port is not allowed';
    case PcpResultCode.NetworkFailure: return '; the router has no external address yet: try again later';
    case PcpResultCode.NoResources: case PcpResultCode.UserExQuota: return '; the router has no mapping to spare, or (miniupnpd) refuses to forward at all because it found a NAT in front of it: check its log, close other mappings or try later';
    case PcpResultCode.AddressMismatch: return '; the request left through another NAT than the one it names (a NAT between this host and the gateway?)';
    case PcpResultCode.CannotProvideExternal: return '; the suggested external address or port is not available';
    default: return '';
  }
}
