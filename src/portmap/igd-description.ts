/**
 * An Internet Gateway Device's description: where to send SOAP for its WAN connection service.
 * IGD v1 and v2 nest it as InternetGatewayDevice → WANDevice → WANConnectionDevice →
 * WANIPConnection (or WANPPPConnection, on PPPoE links); any of those service types will do.
 * @see UPnP Device Architecture 1.1 §2.3, UPnP IGD:1 / IGD:2 WANIPConnection
 */

import { PortMapDecodeError } from '../errors.js';
import { elements, optionalText } from './xml-text.js';

/** In order of preference: IGD:2's WANIPConnection:2 speaks v1's actions too. */
export const WAN_CONNECTION_SERVICES = [
  'urn:schemas-upnp-org:service:WANIPConnection:2',
  'urn:schemas-upnp-org:service:WANIPConnection:1',
  'urn:schemas-upnp-org:service:WANPPPConnection:1',
] as const;

/** Longest description read; real ones are a few KiB. */
export const MAX_DESCRIPTION_BYTES = 256 * 1024;

export interface WanConnectionService {
  serviceType: string;
  controlUrl: URL;
}

/**
 * The best WAN connection service in a description fetched from `location`: its control URL
 * resolved against URLBase (UDA 1.0) or the description's own URL.
 * @throws PortMapDecodeError when the description lists none, or its control URL is not http:
 */
export function wanConnectionService(xml: string, location: URL): WanConnectionService {
  const base = optionalText(xml, 'URLBase');
  const found: WanConnectionService[] = [];
  for (const service of elements(xml, 'service')) {
    const serviceType = optionalText(service, 'serviceType');
    if (serviceType === undefined || !(WAN_CONNECTION_SERVICES as readonly string[]).includes(serviceType)) continue;
    const control = optionalText(service, 'controlURL');
    if (control === undefined) throw new PortMapDecodeError(`UPnP description at ${location.href}: ${serviceType} has no <controlURL>`);
    let controlUrl: URL;
    try {
      controlUrl = new URL(control, base !== undefined && base !== '' ? base : location);
    } catch {
      throw new PortMapDecodeError(`UPnP description at ${location.href}: controlURL "${control.slice(0, 80)}" is not a URL`);
    }
    if (controlUrl.protocol !== 'http:') throw new PortMapDecodeError(`UPnP description at ${location.href}: controlURL ${controlUrl.href} is not http:`);
    found.push({ serviceType, controlUrl });
  }
  found.sort((a, b) => WAN_CONNECTION_SERVICES.indexOf(a.serviceType as never) - WAN_CONNECTION_SERVICES.indexOf(b.serviceType as never));
  const best = found[0];
  if (best === undefined) throw new PortMapDecodeError(`UPnP description at ${location.href}: no WANIPConnection or WANPPPConnection service; the device is not an Internet Gateway`);
  return best;
}
