/**
 * TURN: the client (allocation, permissions, channels, data through the relay), its
 * transports, and the REST-style ephemeral credentials clients and servers share.
 * @see RFC 8656
 */

export {
  TurnClient, allocationRefreshDelayMs, DEFAULT_STREAM_TRANSACTION_TIMEOUT,
  type TurnClientOptions, type AllocateOptions, type TurnAllocation, type TurnClientEvents, type RefreshTarget,
} from './client.js';
export {
  udpTransport, openUdpTransport, streamTransport, connectTcpTransport, connectTlsTransport,
  type TurnTransport, type UdpTurnTransport, type StreamConnectOptions,
} from './client-transport.js';
export { restCredentials, type RestCredentials } from './rest-credentials.js';
export { restPassword, restExpiry } from './rest-credentials.js';
export { TurnServer, type TurnServerOptions, type TurnServerStats, type PeerPolicy } from './server.js';
export { PeerAddressPolicy, DEFAULT_DENIED_RANGES, type PeerAddressPolicyOptions, type PeerAddressVerdict } from './peer-policy.js';
export { parseCidr } from './cidr.js';
export { isChannelData, decodeChannelData, encodeChannelData } from './channel-data.js';
