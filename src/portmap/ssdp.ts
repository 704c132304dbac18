/**
 * SSDP discovery of an Internet Gateway Device: the M-SEARCH request a control point multicasts
 * and the unicast HTTPU response a device sends back, with the LOCATION of its description.
 * @see UPnP Device Architecture 1.1 §1.3.2 (M-SEARCH), §1.3.3 (response)
 */

import { PortMapDecodeError } from '../errors.js';

export const SSDP_MULTICAST_ADDRESS = '239.255.255.250';
export const SSDP_PORT = 1900;
/** The search targets that lead to a WANIPConnection or WANPPPConnection service (IGD v1 and v2). */
export const IGD_SEARCH_TARGETS = [
  'urn:schemas-upnp-org:device:InternetGatewayDevice:1',
  'urn:schemas-upnp-org:device:InternetGatewayDevice:2',
] as const;
/** Seconds a device may wait before answering (MX); UDA 1.1 §1.3.2: 1 to 5. */
export const SSDP_MX = 1;
/** An SSDP response larger than this is not a real one. */
export const SSDP_MAX_RESPONSE = 4096;

export interface SsdpResponse {
  st: string;
  location: URL;
  usn: string | undefined;
}

/** @see UPnP Device Architecture 1.1 §1.3.2 */
export function encodeMSearch(searchTarget: string, host = `${SSDP_MULTICAST_ADDRESS}:${SSDP_PORT}`, mx = SSDP_MX): Uint8Array {
  if (/[\r\n]/.test(searchTarget)) throw new RangeError(`SSDP search target ${JSON.stringify(searchTarget)} contains a line break`);
  return new TextEncoder().encode([
    'M-SEARCH * HTTP/1.1',
    `HOST: ${host}`,
    'MAN: "ssdp:discover"',
    `MX: ${mx}`,
    `ST: ${searchTarget}`,
    '', '',
  ].join('\r\n'));
}

/**
 * A search response: "HTTP/1.1 200 OK", then headers (names case-insensitive) with at least ST
 * and an http LOCATION.
 * @throws PortMapDecodeError saying what was missing or malformed
 * @see UPnP Device Architecture 1.1 §1.3.3
 */
export function decodeSsdpResponse(bytes: Uint8Array): SsdpResponse {
  if (bytes.length > SSDP_MAX_RESPONSE) throw new PortMapDecodeError(`SSDP response: ${bytes.length} bytes, more than ${SSDP_MAX_RESPONSE}`);
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  const lines = text.split(/\r?\n/);
  if (!/^HTTP\/1\.[01] 200\b/.test(lines[0] ?? '')) throw new PortMapDecodeError(`SSDP response: status line "${(lines[0] ?? '').slice(0, 60)}", expected "HTTP/1.1 200 OK"`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    if (line === '') break;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new PortMapDecodeError(`SSDP response: header line "${line.slice(0, 60)}" has no name`);
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const st = headers.get('st');
  if (st === undefined || st === '') throw new PortMapDecodeError('SSDP response: no ST header');
  const locationText = headers.get('location');
  if (locationText === undefined) throw new PortMapDecodeError('SSDP response: no LOCATION header');
  let location: URL;
  try {
    location = new URL(locationText);
  } catch {
    throw new PortMapDecodeError(`SSDP response: LOCATION "${locationText.slice(0, 80)}" is not a URL`);
  }
  if (location.protocol !== 'http:') throw new PortMapDecodeError(`SSDP response: LOCATION "${locationText.slice(0, 80)}" is not http:`);
  return { st, location, usn: headers.get('usn') };
}
