/**
 * SOAP 1.1 as UPnP control uses it: one action per POST, arguments as child elements, a
 * response element `<u:ActionResponse>` with the out arguments, or a 500 with a UPnPError.
 * @see UPnP Device Architecture 1.1 §3.2.1 (action), §3.2.2 (response), §3.2.2.2 (UPnPError)
 */

import { PortMapDecodeError, PortMapError } from '../errors.js';
import { elements, escapeXml, optionalText, requiredText } from './xml-text.js';

/** Error codes a WANIPConnection returns. @see UPnP IGD WANIPConnection:1 §2.4.16 (AddPortMapping) */
export const UpnpErrorCode = {
  InvalidArgs: 402,
  ActionFailed: 501,
  NotAuthorized: 606,
  NoSuchEntryInArray: 714,
  ConflictInMappingEntry: 718,
  SamePortValuesRequired: 724,
  OnlyPermanentLeasesSupported: 725,
} as const;

export interface SoapRequest {
  body: string;
  /** The SOAPACTION header's value, quotes included. */
  soapAction: string;
}

export function encodeSoapRequest(serviceType: string, action: string, args: ReadonlyArray<readonly [string, string | number]>): SoapRequest {
  if (!/^[A-Za-z]\w*$/.test(action)) throw new RangeError(`SOAP action "${action}" is not a name`);
  const inner = args.map(([name, value]) => {
    if (!/^[A-Za-z]\w*$/.test(name)) throw new RangeError(`SOAP argument "${name}" is not a name`);
    return `<${name}>${escapeXml(String(value))}</${name}>`;
  }).join('');
  return {
    body: '<?xml version="1.0"?>\r\n'
      + '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">'
      + `<s:Body><u:${action} xmlns:u="${escapeXml(serviceType)}">${inner}</u:${action}></s:Body></s:Envelope>\r\n`,
    soapAction: `"${serviceType}#${action}"`,
  };
}

/**
 * The out arguments of `action`'s response, or the device's UPnPError as a PortMapError
 * (`status` = its errorCode).
 * @throws PortMapDecodeError when the body is neither a response to `action` nor a UPnP fault
 */
export function decodeSoapResponse(httpStatus: number, xml: string, action: string, outArgs: readonly string[]): Record<string, string> {
  const body = elements(xml, 'Body')[0];
  if (body === undefined) throw new PortMapDecodeError(`UPnP ${action}: HTTP ${httpStatus} without a SOAP <Body>`);
  const fault = elements(body, 'UPnPError')[0];
  if (fault !== undefined || httpStatus !== 200) {
    if (fault === undefined) throw new PortMapDecodeError(`UPnP ${action}: HTTP ${httpStatus} without a <UPnPError>`);
    const code = Number(requiredText(fault, 'errorCode', `UPnP ${action} fault`));
    if (!Number.isInteger(code) || code < 0) throw new PortMapDecodeError(`UPnP ${action} fault: errorCode is not a number`);
    const description = optionalText(fault, 'errorDescription') ?? '';
    throw new PortMapError('refused', `UPnP ${action}: the gateway answered error ${code}${description === '' ? '' : ` (${description})`}${advice(code)}`, { method: 'upnp-igd', status: code });
  }
  const response = elements(body, `${action}Response`)[0];
  if (response === undefined) throw new PortMapDecodeError(`UPnP ${action}: HTTP 200 without <${action}Response>`);
  const out: Record<string, string> = {};
  for (const name of outArgs) out[name] = requiredText(response, name, `UPnP ${action}Response`);
  return out;
}

function advice(code: number): string {
  switch (code) {
    case UpnpErrorCode.NotAuthorized: return '; the router does not let this host map ports (secure mode maps only for the requesting host)';
    case UpnpErrorCode.ConflictInMappingEntry: return '; another host holds that external port: ask for another';
    case UpnpErrorCode.OnlyPermanentLeasesSupported: return '; this router accepts only lease 0 (permanent)';
    default: return '';
  }
}
