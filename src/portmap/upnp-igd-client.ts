/**
 * UPnP Internet Gateway Device client, our own: SSDP M-SEARCH for the gateway, its description
 * over HTTP, then SOAP to its WANIPConnection: GetExternalIPAddress, AddPortMapping and
 * DeletePortMapping. Only the default gateway is believed: an SSDP answer from any other host, or
 * one whose LOCATION points at a host other than its sender, is ignored, so no LAN device can
 * steer our HTTP requests elsewhere.
 * @see UPnP Device Architecture 1.1 §1.3 (discovery), §2 (description), §3 (control);
 *      UPnP IGD:1 WANIPConnection:1 §2.4
 */

import { createSocket as createUdpSocket, type Socket } from 'node:dgram';
import { request as httpRequest } from 'node:http';
import { AbortedError, NatpunchError, PortMapDecodeError, PortMapError } from '../errors.js';
import { type Clock, realClock } from '../clock.js';
import { IGD_SEARCH_TARGETS, SSDP_MULTICAST_ADDRESS, SSDP_PORT, decodeSsdpResponse, encodeMSearch } from './ssdp.js';
import { MAX_DESCRIPTION_BYTES, wanConnectionService, type WanConnectionService } from './igd-description.js';
import { decodeSoapResponse, encodeSoapRequest } from './soap.js';
import type { MappingProtocol } from './nat-pmp-message.js';

/** M-SEARCH is repeated (UDP may lose it): at these offsets, within the discovery budget. */
export const M_SEARCH_SENDS_MS = [0, 250, 750] as const;
export const DEFAULT_DISCOVERY_MS = 3_000;
export const DEFAULT_HTTP_TIMEOUT_MS = 5_000;

export interface UpnpIgdOptions {
  /** The gateway: the only host whose SSDP answers and description are believed. */
  gateway: string;
  /** This host's address towards the gateway: the mapping's internal client, and the multicast interface. */
  localAddress: string;
  /** Where M-SEARCH goes besides the gateway itself (default 239.255.255.250:1900). */
  ssdp?: { address: string; port: number };
  /** The gateway's SSDP port for the unicast M-SEARCH (default 1900). */
  gatewaySsdpPort?: number;
  discoveryMs?: number;
  httpTimeoutMs?: number;
  createSocket?: () => Socket;
  clock?: Clock;
}

export interface AddPortMapping {
  protocol: MappingProtocol;
  externalPort: number;
  internalPort: number;
  leaseSeconds: number;
  description: string;
}

export class UpnpIgdClient {
  readonly gateway: string;
  readonly localAddress: string;
  readonly service: WanConnectionService;
  readonly #httpTimeoutMs: number;

  private constructor(options: UpnpIgdOptions, service: WanConnectionService) {
    this.gateway = options.gateway;
    this.localAddress = options.localAddress;
    this.service = service;
    this.#httpTimeoutMs = options.httpTimeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
  }

  /**
   * Find the gateway's WAN connection service.
   * @throws PortMapError `no-gateway` when no IGD at the gateway answered in time
   */
  static async discover(options: UpnpIgdOptions, signal?: AbortSignal): Promise<UpnpIgdClient> {
    const location = await search(options, signal);
    const timeoutMs = options.httpTimeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
    const description = await httpExchange(location, { method: 'GET' }, timeoutMs, signal, `UPnP description ${location.href}`);
    if (description.status !== 200) throw new PortMapError('no-gateway', `UPnP description ${location.href}: HTTP ${description.status}, expected 200`, { method: 'upnp-igd' });
    return new UpnpIgdClient(options, wanConnectionService(description.body, location));
  }

  /** @see WANIPConnection:1 §2.4.18 GetExternalIPAddress */
  async externalAddress(signal?: AbortSignal): Promise<string> {
    const out = await this.#call('GetExternalIPAddress', [], ['NewExternalIPAddress'], signal);
    return out['NewExternalIPAddress']!;
  }

  /**
   * Maps `externalPort` to this host's `internalPort`; the same call again renews it.
   * @see WANIPConnection:1 §2.4.16 AddPortMapping
   */
  async addPortMapping(mapping: AddPortMapping, signal?: AbortSignal): Promise<void> {
    await this.#call('AddPortMapping', [
      ['NewRemoteHost', ''],
      ['NewExternalPort', mapping.externalPort],
      ['NewProtocol', mapping.protocol.toUpperCase()],
      ['NewInternalPort', mapping.internalPort],
      ['NewInternalClient', this.localAddress],
      ['NewEnabled', 1],
      ['NewPortMappingDescription', mapping.description],
      ['NewLeaseDuration', mapping.leaseSeconds],
    ], [], signal);
  }

  /** @see WANIPConnection:1 §2.4.17 DeletePortMapping */
  async deletePortMapping(protocol: MappingProtocol, externalPort: number, signal?: AbortSignal): Promise<void> {
    await this.#call('DeletePortMapping', [['NewRemoteHost', ''], ['NewExternalPort', externalPort], ['NewProtocol', protocol.toUpperCase()]], [], signal);
  }

  async #call(action: string, args: ReadonlyArray<readonly [string, string | number]>, outArgs: readonly string[], signal?: AbortSignal): Promise<Record<string, string>> {
    const { body, soapAction } = encodeSoapRequest(this.service.serviceType, action, args);
    const url = this.service.controlUrl;
    const response = await httpExchange(url, {
      method: 'POST',
      headers: { 'content-type': 'text/xml; charset="utf-8"', soapaction: soapAction },
      body,
    }, this.#httpTimeoutMs, signal, `UPnP ${action} at ${url.href}`);
    try {
      return decodeSoapResponse(response.status, response.body, action, outArgs);
    } catch (error) {
      if (error instanceof PortMapDecodeError) throw new PortMapError('refused', `${error.message}; the gateway's UPnP answer was not understood`, { method: 'upnp-igd', cause: error });
      throw error;
    }
  }
}

/** Multicast and unicast M-SEARCH; the LOCATION of the first IGD answer from the gateway. */
async function search(options: UpnpIgdOptions, signal?: AbortSignal): Promise<URL> {
  const clock = options.clock ?? realClock;
  const budget = options.discoveryMs ?? DEFAULT_DISCOVERY_MS;
  const socket = options.createSocket?.() ?? createUdpSocket('udp4');
  const targets = [
    options.ssdp ?? { address: SSDP_MULTICAST_ADDRESS, port: SSDP_PORT },
    { address: options.gateway, port: options.gatewaySsdpPort ?? SSDP_PORT },
  ];
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, options.localAddress, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    try {
      socket.setMulticastTTL(2); // UDA 1.1 §1.3.2: TTL SHOULD default to 2
      socket.setMulticastInterface(options.localAddress);
    } catch {
      // Not every socket (or test double) does multicast; the unicast search still goes out.
    }
    return await new Promise<URL>((resolve, reject) => {
      const timers: unknown[] = [];
      const ignored: string[] = [];
      const finish = (): void => {
        for (const timer of timers) clock.clearTimeout(timer);
        socket.off('message', onMessage);
        socket.off('error', onError);
        signal?.removeEventListener('abort', onAbort);
      };
      const onMessage = (data: Buffer, from: { address: string }): void => {
        if (from.address !== options.gateway) {
          if (ignored.length < 5) ignored.push(`${from.address} (not the gateway)`);
          return;
        }
        let response;
        try {
          response = decodeSsdpResponse(data);
        } catch (error) {
          if (NatpunchError.is(error) && ignored.length < 5) ignored.push(error.message);
          return;
        }
        if (!(IGD_SEARCH_TARGETS as readonly string[]).includes(response.st)) return;
        if (response.location.hostname !== from.address) {
          if (ignored.length < 5) ignored.push(`LOCATION ${response.location.host} is not its sender ${from.address}`);
          return;
        }
        finish();
        resolve(response.location);
      };
      const onError = (error: Error): void => {
        // A unicast M-SEARCH to a gateway without SSDP may come back as port unreachable; the
        // multicast search goes on.
        if ((error as NodeJS.ErrnoException).code === 'ECONNREFUSED') return;
        finish();
        reject(new PortMapError('no-gateway', `UPnP discovery: ${error.message}`, { method: 'upnp-igd', cause: error }));
      };
      const onAbort = (): void => {
        finish();
        reject(new AbortedError('UPnP discovery: aborted', { cause: signal?.reason }));
      };
      if (signal?.aborted) return onAbort();
      socket.on('message', onMessage);
      socket.on('error', onError);
      signal?.addEventListener('abort', onAbort, { once: true });
      for (const at of M_SEARCH_SENDS_MS.filter((ms) => ms < budget)) {
        timers.push(clock.setTimeout(() => {
          for (const target of targets) {
            for (const st of IGD_SEARCH_TARGETS) {
              socket.send(encodeMSearch(st, `${target.address}:${target.port}`), target.port, target.address, () => undefined);
            }
          }
        }, at));
      }
      timers.push(clock.setTimeout(() => {
        finish();
        const why = ignored.length > 0 ? `; ignored: ${ignored.join('; ')}` : '';
        reject(new PortMapError('no-gateway', `UPnP discovery: no Internet Gateway Device at ${options.gateway} answered M-SEARCH within ${budget} ms${why}; UPnP may be off on the router`, { method: 'upnp-igd' }));
      }, budget));
    });
  } finally {
    socket.close();
  }
}

interface HttpResult {
  status: number;
  body: string;
}

/** One HTTP/1.1 exchange with a deadline, reading at most MAX_DESCRIPTION_BYTES. */
function httpExchange(url: URL, init: { method: string; headers?: Record<string, string>; body?: string }, timeoutMs: number, signal: AbortSignal | undefined, what: string): Promise<HttpResult> {
  return new Promise<HttpResult>((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError(`${what}: aborted`, { cause: signal.reason }));
    const body = init.body === undefined ? undefined : Buffer.from(init.body, 'utf8');
    const request = httpRequest(url, {
      method: init.method,
      headers: { ...init.headers, ...(body === undefined ? {} : { 'content-length': String(body.length) }), connection: 'close' },
      agent: false,
    });
    let settled = false;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      request.destroy();
      reject(error);
    };
    const onAbort = (): void => fail(new AbortedError(`${what}: aborted`, { cause: signal?.reason }));
    const timer = setTimeout(() => fail(new PortMapError('no-gateway', `${what}: no complete HTTP answer within ${timeoutMs} ms`, { method: 'upnp-igd' })), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    request.on('error', (error) => fail(new PortMapError('no-gateway', `${what}: ${error.message}`, { method: 'upnp-igd', cause: error })));
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      let length = 0;
      response.on('data', (chunk: Buffer) => {
        length += chunk.length;
        if (length > MAX_DESCRIPTION_BYTES) fail(new PortMapError('refused', `${what}: answer longer than ${MAX_DESCRIPTION_BYTES} bytes`, { method: 'upnp-igd' }));
        else chunks.push(chunk);
      });
      response.on('error', (error) => fail(new PortMapError('no-gateway', `${what}: ${error.message}`, { method: 'upnp-igd', cause: error })));
      response.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    request.end(body);
  });
}
