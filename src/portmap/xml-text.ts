/**
 * Just enough XML for UPnP device descriptions and SOAP: the text of named elements, whatever
 * namespace prefix the device chose (`<u:NewExternalIPAddress>`, `<s:Body>`), with the five
 * predefined entities and character references decoded. No DTDs, no entity expansion beyond
 * those, so a hostile device cannot make it allocate more than its input (STYLE §7).
 * @see UPnP Device Architecture 1.1 §2.3 (description), §3.2 (control)
 */

import { PortMapDecodeError } from '../errors.js';

/**
 * Every element `name` (any prefix) in `xml`, its inner text raw (nested markup kept); an empty
 * element written `<u:AddPortMappingResponse xmlns:u="..."/>` (as miniupnpd does) has ''.
 */
export function elements(xml: string, name: string): string[] {
  const prefix = '(?:[A-Za-z_][\\w.-]*:)?';
  const pattern = new RegExp(`<${prefix}${name}(?:\\s[^>]*?)?(?:/>|>([\\s\\S]*?)</${prefix}${name}\\s*>)`, 'g');
  return [...xml.matchAll(pattern)].map((m) => m[1] ?? '');
}

/** The decoded text of the first element `name`, or undefined when there is none. */
export function optionalText(xml: string, name: string): string | undefined {
  const raw = elements(xml, name)[0];
  return raw === undefined ? undefined : unescapeXml(raw.trim());
}

/** @throws PortMapDecodeError naming the element and where it was looked for */
export function requiredText(xml: string, name: string, where: string): string {
  const text = optionalText(xml, name);
  if (text === undefined) throw new PortMapDecodeError(`${where}: no <${name}> element`);
  return text;
}

export function unescapeXml(text: string): string {
  if (text.includes('<')) throw new PortMapDecodeError(`XML text "${text.slice(0, 60)}" contains markup where a plain value was expected`);
  return text.replace(/&(?:#x([0-9a-fA-F]{1,6})|#(\d{1,7})|(lt|gt|amp|quot|apos));/g, (whole, hex: string | undefined, dec: string | undefined, named: string | undefined) => {
    if (named !== undefined) return { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }[named as 'lt']!;
    const code = hex !== undefined ? parseInt(hex, 16) : Number(dec);
    if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff) || code === 0) throw new PortMapDecodeError(`XML character reference ${whole} is not a character`);
    return String.fromCodePoint(code);
  });
}

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}
