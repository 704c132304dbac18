/**
 * In-test gateways on loopback, built from natpunch's own encoders: a NAT-PMP/PCP server (as
 * RFC 6886 §3 and RFC 6887 §11 describe the server side) and a UPnP IGD (SSDP responder, device
 * description, WANIPConnection control). Each records what it was asked and can be told to
 * misbehave in the ways the client must survive.
 */

import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  NatPmpOpcode, NatPmpResultCode, encodeErrorResponse, encodeExternalAddressResponse, encodeMapResponse,
} from '../../src/portmap/nat-pmp-message.js';
import { PcpOpcode, PcpResultCode, decodePcpRequest, encodePcpResponse } from '../../src/portmap/pcp-message.js';
import { MAP_BODY, decodeMapBody, encodeMapBody, type PcpMap } from '../../src/portmap/pcp-map.js';

export interface PcpSeen { lifetime: number; clientAddress: string; map: PcpMap }
export interface NatPmpSeen { opcode: number; internalPort?: number; suggestedExternalPort?: number; lifetime?: number }

export interface FakePortMapServerOptions {
  /** 'pcp': answers PCP and NAT-PMP; 'nat-pmp': answers PCP with NAT-PMP's UNSUPP_VERSION; 'silent': drops everything. */
  speaks: 'pcp' | 'nat-pmp' | 'silent';
  externalAddress?: string;
  /** Result code for every map request (default success). */
  resultCode?: number;
  /** The lifetime granted (default: as requested). */
  grantSeconds?: number;
  /** Before each real PCP answer, send one with another nonce (the client must ignore it). */
  wrongNonceFirst?: boolean;
  /** External port granted (default: the suggested one, else the internal one). */
  externalPort?: number;
}

/** A NAT-PMP + PCP server on 127.0.0.1, port chosen by the kernel. */
export class FakePortMapServer {
  readonly socket: Socket;
  readonly pcp: PcpSeen[] = [];
  readonly natPmp: NatPmpSeen[] = [];
  options: FakePortMapServerOptions;
  epochSeconds = 1000;
  /** Every datagram that arrived, answered or not. */
  datagrams = 0;
  #waiters: (() => void)[] = [];

  private constructor(socket: Socket, options: FakePortMapServerOptions) {
    this.socket = socket;
    this.options = options;
    socket.on('message', (data, from) => this.#handle(data, from));
  }

  static async start(options: FakePortMapServerOptions): Promise<FakePortMapServer> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return new FakePortMapServer(socket, options);
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** Resolves once `count` datagrams have arrived in all. */
  async requests(count: number): Promise<void> {
    while (this.datagrams < count) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  close(): void {
    this.socket.close();
  }

  #send(bytes: Uint8Array, to: RemoteInfo): void {
    this.socket.send(bytes, to.port, to.address);
  }

  #handle(data: Buffer, from: RemoteInfo): void {
    this.datagrams++;
    if (this.options.speaks !== 'silent') {
      if (data[0] === 2) this.#pcp(data, from);
      else if (data[0] === 0) this.#natPmp(data, from);
    }
    for (const wake of this.#waiters.splice(0)) wake();
  }

  #pcp(data: Buffer, from: RemoteInfo): void {
    const request = decodePcpRequest(data, MAP_BODY);
    const map = decodeMapBody(request.body);
    this.pcp.push({ lifetime: request.requestedLifetimeSeconds, clientAddress: request.clientAddress, map });
    if (this.options.speaks === 'nat-pmp') {
      // RFC 6886 §3.5 / RFC 6887 §9: a NAT-PMP server answers version 2 with Unsupported Version.
      this.#send(encodeErrorResponse({ opcode: request.opcode, resultCode: NatPmpResultCode.UnsupportedVersion, epochSeconds: this.epochSeconds }), from);
      return;
    }
    const resultCode = request.requestedLifetimeSeconds === 0 ? PcpResultCode.Success : this.options.resultCode ?? PcpResultCode.Success;
    const granted: PcpMap = {
      ...map,
      externalPort: request.requestedLifetimeSeconds === 0 ? 0 : this.options.externalPort ?? (map.externalPort || map.internalPort),
      externalAddress: this.options.externalAddress ?? '203.0.113.7',
    };
    const answer = (nonce: Uint8Array): Uint8Array => encodePcpResponse({
      opcode: PcpOpcode.Map,
      resultCode,
      lifetimeSeconds: resultCode !== PcpResultCode.Success ? 30 : request.requestedLifetimeSeconds === 0 ? 0 : this.options.grantSeconds ?? request.requestedLifetimeSeconds,
      epochSeconds: this.epochSeconds,
      body: encodeMapBody({ ...granted, nonce }),
    });
    if (this.options.wrongNonceFirst) this.#send(answer(map.nonce.map((b) => b ^ 0xff)), from);
    this.#send(answer(map.nonce), from);
  }

  #natPmp(data: Buffer, from: RemoteInfo): void {
    const opcode = data[1]!;
    const epochSeconds = this.epochSeconds;
    if (opcode === NatPmpOpcode.ExternalAddress) {
      this.natPmp.push({ opcode });
      this.#send(encodeExternalAddressResponse({ resultCode: 0, epochSeconds, externalAddress: this.options.externalAddress ?? '203.0.113.7' }), from);
      return;
    }
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const seen = { opcode, internalPort: view.getUint16(4), suggestedExternalPort: view.getUint16(6), lifetime: view.getUint32(8) };
    this.natPmp.push(seen);
    const resultCode = seen.lifetime === 0 ? 0 : this.options.resultCode ?? 0;
    if (resultCode !== 0) {
      this.#send(encodeErrorResponse({ opcode, resultCode, epochSeconds }), from);
      return;
    }
    this.#send(encodeMapResponse({
      opcode: opcode as 1 | 2,
      resultCode: 0,
      epochSeconds,
      internalPort: seen.internalPort,
      mappedExternalPort: seen.lifetime === 0 ? 0 : this.options.externalPort ?? (seen.suggestedExternalPort || seen.internalPort),
      lifetimeSeconds: seen.lifetime === 0 ? 0 : this.options.grantSeconds ?? seen.lifetime,
    }), from);
  }
}

export interface SoapSeen { action: string; body: string }

export interface FakeIgdOptions {
  externalAddress?: string;
  /** UPnP errorCode for the first AddPortMapping calls, one per call, then success. */
  addErrors?: number[];
}

/** A UPnP IGD on 127.0.0.1: SSDP on a UDP port, description and control over HTTP. */
export class FakeIgd {
  readonly ssdp: Socket;
  readonly http: Server;
  readonly actions: SoapSeen[] = [];
  readonly mappings = new Map<string, { internalPort: number; lease: number; client: string }>();
  options: FakeIgdOptions;

  private constructor(ssdp: Socket, http: Server, options: FakeIgdOptions) {
    this.ssdp = ssdp;
    this.http = http;
    this.options = options;
    ssdp.on('message', (data, from) => {
      const text = String(data);
      const st = /^ST: (.*)$/m.exec(text)?.[1]?.trim();
      if (!text.startsWith('M-SEARCH') || st === undefined) return;
      const response = `HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: ${st}\r\nUSN: uuid:fake::${st}\r\nEXT:\r\nLOCATION: http://127.0.0.1:${this.httpPort}/rootDesc.xml\r\n\r\n`;
      ssdp.send(response, from.port, from.address);
    });
    http.on('request', (request, response) => {
      let body = '';
      request.on('data', (chunk) => { body += String(chunk); });
      request.on('end', () => {
        if (request.method === 'GET' && request.url === '/rootDesc.xml') {
          response.writeHead(200, { 'content-type': 'text/xml' }).end(DESCRIPTION);
          return;
        }
        const action = /#(\w+)"/.exec(String(request.headers['soapaction']))?.[1] ?? '';
        this.actions.push({ action, body });
        const arg = (name: string): string => new RegExp(`<${name}>([^<]*)</${name}>`).exec(body)?.[1] ?? '';
        const fault = (code: number): void => {
          response.writeHead(500, { 'content-type': 'text/xml' }).end(envelope(`<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>${code}</errorCode><errorDescription>error ${code}</errorDescription></UPnPError></detail></s:Fault>`));
        };
        const ok = (inner = ''): void => {
          response.writeHead(200, { 'content-type': 'text/xml' }).end(envelope(inner === '' ? `<u:${action}Response xmlns:u="${SERVICE}"/>` : `<u:${action}Response xmlns:u="${SERVICE}">${inner}</u:${action}Response>`));
        };
        switch (action) {
          case 'GetExternalIPAddress': return ok(`<NewExternalIPAddress>${this.options.externalAddress ?? '203.0.113.9'}</NewExternalIPAddress>`);
          case 'AddPortMapping': {
            const error = this.options.addErrors?.shift();
            if (error !== undefined) return fault(error);
            this.mappings.set(`${arg('NewProtocol')} ${arg('NewExternalPort')}`, { internalPort: Number(arg('NewInternalPort')), lease: Number(arg('NewLeaseDuration')), client: arg('NewInternalClient') });
            return ok();
          }
          case 'DeletePortMapping':
            if (!this.mappings.delete(`${arg('NewProtocol')} ${arg('NewExternalPort')}`)) return fault(714);
            return ok();
          default: return fault(401);
        }
      });
    });
  }

  static async start(options: FakeIgdOptions = {}): Promise<FakeIgd> {
    const ssdp = createSocket('udp4');
    await new Promise<void>((resolve) => ssdp.bind(0, '127.0.0.1', resolve));
    const http = createServer();
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    return new FakeIgd(ssdp, http, options);
  }

  get ssdpPort(): number {
    return this.ssdp.address().port;
  }

  get httpPort(): number {
    return (this.http.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.ssdp.close();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}

const SERVICE = 'urn:schemas-upnp-org:service:WANIPConnection:1';
const envelope = (inner: string): string => `<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>${inner}</s:Body></s:Envelope>\r\n`;

/** Shaped like miniupnpd's rootDesc.xml: IGD → WANDevice → WANConnectionDevice → WANIPConnection. */
export const DESCRIPTION = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>1</minor></specVersion>
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType><controlURL>/ctl/L3F</controlURL></service></serviceList>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType><controlURL>/ctl/CmnIfCfg</controlURL></service></serviceList>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<serviceList><service><serviceType>${SERVICE}</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId><controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL></service></serviceList>
</device></deviceList></device></deviceList></device></root>`;
