/**
 * natpunch's public API. Everything else is internal and may change.
 */
export * from './errors.js';
export { createPeer, Peer, type PeerOptions, type ConnectOptions, type Connection, type PathKind, type RefusedInfo } from './peer/peer.js';
export { type AllowList, parseAllowFile, readAllowFile } from './peer/allow-list.js';
export {
  punchServerless, SERVERLESS_PUNCH_TIMEOUT_MS, type ServerlessPunchOptions, type ServerlessConnection,
} from './peer/serverless.js';
export { PeerAbortedError, StreamResetError, StreamTimeoutError } from './transport/errors.js';
export { StunServer, type StunServerOptions, type StunServerStats } from './stun/server.js';
export { StunUdpClient, type StunResponse, type RequestOptions } from './stun/udp-client.js';
export { StunTcpClient } from './stun/tcp-client.js';
export { checkNat, type NatReport, type CheckOptions } from './nat/check.js';
export { explainReport } from './nat/explain.js';
export type { Behaviour, Rfc3489Class, PortAllocation } from './nat/behaviour.js';
export {
  generateIdentity, loadOrCreateIdentity, defaultKeyFile, peerIdFromPublicKey, publicKeyFromPeerId, isPeerId, normalizePeerId,
  verify, KeyFileError, InvalidPeerIdError, type Identity,
} from './identity/index.js';
export { NatpunchHandshake, NoiseError, DatagramCipher, type SecureSession, type NoiseFailure } from './secure/index.js';
export type { TransportAddress } from './wire/index.js';
export { RendezvousError, type RendezvousErrorReason, type DisconnectInfo, type ReconnectInfo, type ReconnectOptions } from './rendezvous/index.js';
export { mapPort, PortMapping, type MapPortOptions, type PortMapMethod, type PortMappingInfo } from './portmap/index.js';
export {
  sendFiles, receiveFiles, collectEntries, TransferError, TransferDecodeError,
  type SendOptions, type ReceiveOptions, type LocalEntry, type LocalEntries, type TransferFailure, type TransferProgress, type TransferSummary,
} from './transfer/index.js';
export { MuxSession, MuxStream, MuxError, MuxStreamResetError, MuxErrorCode, type MuxSessionOptions } from './mux/index.js';
