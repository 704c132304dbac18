/**
 * Port mapping: ask the NAT to forward a port, by PCP (RFC 6887), NAT-PMP (RFC 6886) or
 * UPnP-IGD, behind one call (`mapPort`). See docs/portmap.md.
 */

export {
  mapPort, DEFAULT_LIFETIME_SECONDS, DEFAULT_TIMEOUT_MS, DEFAULT_UPNP_HEAD_START_MS, type MapPortOptions,
} from './map-port.js';
export {
  PortMapping, PORT_MAP_METHODS, DELETE_BUDGET_MS,
  type PortMapMethod, type PortMappingInfo, type PortMappingEvents, type Grant, type MappingDriver,
} from './mapping.js';
export { defaultGateway, parseProcNetRoute, type DefaultRoute } from './default-gateway.js';
export { externalAddressProblem, type ExternalAddressProblem } from './external-address.js';
export type { MappingProtocol } from './nat-pmp-message.js';
