/**
 * natpunch's public API. Everything else is internal and may change.
 */
export * from './errors.js';
export {
  createPeer, Peer, type PeerOptions, type ConnectOptions, type Connection, type PathKind, type RefusedInfo, type KeepaliveInfo,
} from './peer/peer.js';
export type { PathInfo, PathChangeReason, StandbyInfo, PathSummary } from './path/path-manager.js';
export type { StreamStats } from './transport/stream-connection.js';
export type { PeerPortMappingOptions } from './peer/port-mapping.js';
export type { Reachability } from './rendezvous/messages.js';
export type { Clock } from './clock.js';
export { type AllowList, parseAllowFile, readAllowFile } from './peer/allow-list.js';
export {
  punchServerless, SERVERLESS_PUNCH_TIMEOUT_MS, type ServerlessPunchOptions, type ServerlessConnection,
} from './peer/serverless.js';
export { PeerAbortedError, StreamResetError, StreamTimeoutError } from './transport/errors.js';
export { createServer, NatpunchServer, type NatpunchServerOptions } from './server/natpunch-server.js';
export type { RelayConfig } from './server/relay-config.js';
export type { HttpLimits } from './server/http-limits.js';
export type { RendezvousLimits } from './rendezvous/server-options.js';
export type { StunLimits } from './stun/server.js';
export type { IncomingLimits } from './peer/incoming-limits.js';
export { StunServer, type StunServerOptions, type StunServerStats } from './stun/server.js';
export { StunUdpClient, type StunResponse, type RequestOptions } from './stun/udp-client.js';
export type { RetransmissionOptions } from './stun/retransmission.js';
export { StunTcpClient } from './stun/tcp-client.js';
export type { TcpNet } from './tcp-net.js';
export { checkNat, type NatReport, type CheckOptions } from './nat/check.js';
export type { MappingLifetime } from './nat/lifetime.js';
export { explainReport } from './nat/explain.js';
export type { Behaviour, Rfc3489Class, PortAllocation } from './nat/behaviour.js';
export {
  generateIdentity, loadOrCreateIdentity, defaultKeyFile, peerIdFromPublicKey, publicKeyFromPeerId, isPeerId, normalizePeerId,
  verify, KeyFileError, InvalidPeerIdError, type Identity,
} from './identity/index.js';
export { NatpunchHandshake, NoiseError, DatagramCipher, type SecureSession, type NoiseFailure } from './secure/index.js';
export type { NatpunchHandshakeOptions } from './secure/natpunch-handshake.js';
export type { DatagramCipherOptions } from './secure/datagram-cipher.js';
export type { ChaChaPolyImplementation } from './secure/chachapoly-key.js';
export type { TransportAddress } from './wire/index.js';
export { RendezvousError, type RendezvousErrorReason, type DisconnectInfo, type ReconnectInfo, type ReconnectOptions } from './rendezvous/index.js';
export { mapPort, PortMapping, type MapPortOptions, type PortMapMethod, type PortMappingInfo } from './portmap/index.js';
export type { Grant } from './portmap/mapping.js';
export type { MappingProtocol } from './portmap/nat-pmp-message.js';
export {
  sendFiles, receiveFiles, collectEntries, TransferError, TransferDecodeError,
  type SendOptions, type ReceiveOptions, type LocalEntry, type LocalEntries, type TransferFailure, type TransferProgress, type TransferSummary,
} from './transfer/index.js';
export type { Entry, EntryKind } from './transfer/messages.js';
export type { ProgressListener } from './transfer/progress.js';
export type { CheckListener } from './transfer/output-directory.js';
export { MuxSession, MuxStream, MuxError, MuxStreamResetError, MuxErrorCode, type MuxSessionOptions } from './mux/index.js';
