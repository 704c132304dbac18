/**
 * Fuzzing every port-mapping parser (STYLE §11): random and mutated input throws nothing but a
 * NatpunchError (PortMapDecodeError, or PortMapError for a UPnP fault); decode(encode(v))
 * equals v; and a PCP client in a real exchange takes only the answer carrying its nonce.
 * Seeded, so deterministic; FUZZ_RUNS scales it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import fc from 'fast-check';
import { NatpunchError } from '../../src/errors.js';
import {
  decodeNatPmpResponse, encodeErrorResponse, encodeExternalAddressResponse, encodeMapResponse,
} from '../../src/portmap/nat-pmp-message.js';
import { decodeOptions, decodePcpRequest, decodePcpResponse, encodePcpResponse, PcpOpcode } from '../../src/portmap/pcp-message.js';
import { MAP_BODY, decodeMapResponse, encodeMapBody } from '../../src/portmap/pcp-map.js';
import { decodeSsdpResponse } from '../../src/portmap/ssdp.js';
import { wanConnectionService } from '../../src/portmap/igd-description.js';
import { decodeSoapResponse } from '../../src/portmap/soap.js';
import { parseProcNetRoute } from '../../src/portmap/default-gateway.js';
import { unescapeXml } from '../../src/portmap/xml-text.js';
import { GatewaySocket } from '../../src/portmap/gateway-socket.js';
import { PcpClient } from '../../src/portmap/pcp-client.js';
import { DESCRIPTION } from './fake-gateway.js';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 2000);
const params = { numRuns: RUNS, seed: 6887 };

/** Run `decode`; anything thrown must be a NatpunchError. */
function onlyNatpunchErrors(decode: () => unknown): void {
  try {
    decode();
  } catch (error) {
    if (!NatpunchError.is(error)) throw new Error(`threw a non-NatpunchError: ${String(error)}`, { cause: error });
  }
}

/** Bytes that look like a message: random, or a valid one with bytes altered, cut or extended. */
const mutated = (valid: Uint8Array[]): fc.Arbitrary<Uint8Array> => fc.oneof(
  fc.uint8Array({ maxLength: 1200 }),
  fc.tuple(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.integer({ min: -8, max: 8 })).map(([base, edits, cut]) => {
    const out = new Uint8Array(Math.max(0, base.length + cut));
    out.set(base.subarray(0, out.length));
    for (const [at, value] of edits) if (out.length > 0) out[at % out.length] = value;
    return out;
  }),
);

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
const u32 = fc.nat({ max: 0xffffffff });
const port = fc.nat({ max: 0xffff });
const nonce = fc.uint8Array({ minLength: 12, maxLength: 12 });
const protocol = fc.constantFrom('udp' as const, 'tcp' as const);

const natPmpSamples = [
  encodeExternalAddressResponse({ resultCode: 0, epochSeconds: 1, externalAddress: '203.0.113.1' }),
  encodeMapResponse({ opcode: 1, resultCode: 0, epochSeconds: 1, internalPort: 1, mappedExternalPort: 2, lifetimeSeconds: 3 }),
  encodeErrorResponse({ opcode: 2, resultCode: 3, epochSeconds: 1 }),
];
const pcpSample = encodePcpResponse({
  opcode: PcpOpcode.Map, resultCode: 0, lifetimeSeconds: 60, epochSeconds: 9, options: [{ code: 2, data: new Uint8Array(0) }],
  body: encodeMapBody({ nonce: new Uint8Array(12), protocol: 'udp', internalPort: 1, externalPort: 2, externalAddress: '203.0.113.1' }),
});

test('NAT-PMP: random and mutated responses throw only PortMapDecodeError', () => {
  fc.assert(fc.property(mutated(natPmpSamples), (bytes) => onlyNatpunchErrors(() => decodeNatPmpResponse(bytes))), params);
});

test('NAT-PMP: decode(encode(v)) is v for every response', () => {
  fc.assert(fc.property(fc.record({ opcode: fc.constantFrom(1 as const, 2 as const), resultCode: fc.constant(0), epochSeconds: u32, internalPort: port, mappedExternalPort: port, lifetimeSeconds: u32 }), (r) => {
    assert.deepEqual(decodeNatPmpResponse(encodeMapResponse(r)), { ...r });
  }), params);
  fc.assert(fc.property(fc.record({ resultCode: fc.constant(0), epochSeconds: u32, externalAddress: ipv4 }), (r) => {
    assert.deepEqual(decodeNatPmpResponse(encodeExternalAddressResponse(r)), { opcode: 0, ...r });
  }), params);
  fc.assert(fc.property(fc.record({ opcode: fc.nat(127), resultCode: fc.integer({ min: 1, max: 0xffff }), epochSeconds: u32 }), (r) => {
    assert.deepEqual(decodeNatPmpResponse(encodeErrorResponse(r)), { ...r });
  }), params);
});

test('PCP: random and mutated responses, requests and options throw only PortMapDecodeError', () => {
  fc.assert(fc.property(mutated([pcpSample]), (bytes) => {
    onlyNatpunchErrors(() => decodeMapResponse(decodePcpResponse(bytes)));
    onlyNatpunchErrors(() => decodePcpRequest(bytes, MAP_BODY));
    onlyNatpunchErrors(() => decodeOptions(bytes));
  }), params);
});

test('PCP: a MAP response round-trips, and re-encoding what was decoded decodes the same', () => {
  // fast-check records have a null prototype; deepEqual compares prototypes, so make them plain.
  const options = fc.array(fc.record({ code: fc.nat(255), data: fc.uint8Array({ maxLength: 40 }) }).map((o) => ({ ...o })), { maxLength: 4 });
  fc.assert(fc.property(nonce, protocol, port, port, ipv4, u32, u32, fc.nat(255), options, (n, p, internalPort, externalPort, externalAddress, lifetimeSeconds, epochSeconds, resultCode, opts) => {
    const body = encodeMapBody({ nonce: n, protocol: p, internalPort, externalPort, externalAddress });
    const bytes = encodePcpResponse({ opcode: PcpOpcode.Map, resultCode, lifetimeSeconds, epochSeconds, body, options: opts });
    const decoded = decodeMapResponse(decodePcpResponse(bytes));
    assert.deepEqual(decoded, { opcode: 1, resultCode, lifetimeSeconds, epochSeconds, nonce: n, protocol: p, internalPort, externalPort, externalAddress, options: opts });
    const again = encodePcpResponse({ ...decoded, body: encodeMapBody(decoded) });
    assert.deepEqual(decodeMapResponse(decodePcpResponse(again)), decoded);
  }), params);
});

const ssdpSample = new TextEncoder().encode('HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nLOCATION: http://10.0.1.1:5000/rootDesc.xml\r\nUSN: uuid:1\r\n\r\n');

test('UPnP: SSDP responses, descriptions, SOAP answers and XML text — random or mutated — throw only NatpunchErrors', () => {
  const text = (sample: string): fc.Arbitrary<string> => mutated([new TextEncoder().encode(sample)]).map((b) => new TextDecoder().decode(b));
  const soapSample = '<s:Envelope><s:Body><u:GetExternalIPAddressResponse><NewExternalIPAddress>1.2.3.4</NewExternalIPAddress></u:GetExternalIPAddressResponse><UPnPError><errorCode>718</errorCode></UPnPError></s:Body></s:Envelope>';
  fc.assert(fc.property(mutated([ssdpSample]), (bytes) => onlyNatpunchErrors(() => decodeSsdpResponse(bytes))), params);
  fc.assert(fc.property(text(DESCRIPTION), (xml) => onlyNatpunchErrors(() => wanConnectionService(xml, new URL('http://10.0.1.1/d.xml')))), { ...params, numRuns: Math.ceil(RUNS / 4) });
  fc.assert(fc.property(text(soapSample), fc.constantFrom(200, 500), (xml, status) => onlyNatpunchErrors(() => decodeSoapResponse(status, xml, 'GetExternalIPAddress', ['NewExternalIPAddress']))), params);
  fc.assert(fc.property(fc.string({ maxLength: 80 }), text('a&amp;b&#65;&#x42;'), (a, b) => {
    onlyNatpunchErrors(() => unescapeXml(a));
    onlyNatpunchErrors(() => unescapeXml(b));
  }), params);
});

test('/proc/net/route: random and mutated tables throw only PortMapDecodeError', () => {
  const sample = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t00000000\t0101000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n';
  fc.assert(fc.property(mutated([new TextEncoder().encode(sample)]), (bytes) => onlyNatpunchErrors(() => parseProcNetRoute(new TextDecoder().decode(bytes)))), params);
});

test('a PCP client in a real exchange ignores random and altered answers (nonce, port, protocol, bytes) and takes its own', async () => {
  const server = createSocket('udp4');
  await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
  const socket = await GatewaySocket.open('127.0.0.1', server.address().port);
  const client = new PcpClient(socket, { schedule: { irtMs: 5_000, budgetMs: 10_000 } });
  try {
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 8 }), fc.array(fc.uint8Array({ maxLength: 80 }), { maxLength: 4 }), async (edits, noise) => {
      const n = client.newNonce();
      const answered = new Promise<void>((resolve) => {
        server.once('message', (data, from) => {
          const request = decodePcpRequest(data, MAP_BODY);
          const good = encodePcpResponse({ opcode: PcpOpcode.Map, resultCode: 0, lifetimeSeconds: 120, epochSeconds: 1, body: encodeMapBody({ nonce: request.body.subarray(0, 12), protocol: 'udp', internalPort: 4000, externalPort: 4001, externalAddress: '203.0.113.3' }) });
          // Alter the opcode data only (nonce, protocol, internal port: bytes 24-41), so each altered copy is not ours.
          const bad = edits.map(([at, xor]) => { const copy = Uint8Array.from(good); copy[24 + (at % 18)]! ^= xor; return copy; });
          for (const datagram of [...noise, ...bad, good]) server.send(datagram, from.port, from.address);
          resolve();
        });
      });
      const result = await client.map({ protocol: 'udp', internalPort: 4000, lifetimeSeconds: 120, nonce: n });
      await answered;
      assert.deepEqual({ ...result, epochValid: true }, { externalAddress: '203.0.113.3', externalPort: 4001, lifetimeSeconds: 120, epochValid: true });
    }), { numRuns: 40, seed: 6887 });
  } finally {
    socket.close();
    server.close();
  }
});
