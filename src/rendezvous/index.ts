export {
  RendezvousClient, negotiateVersion,
  type ConnectOptions, type PunchInstruction, type RendezvousClientOptions, type SignedReachability, type Transport, type TrickleOptions,
} from './client.js';
export { DEFAULT_DIAL_BACK_TIMEOUT_MS, dialBackTcp, dialBackUdp, type DialBackOptions } from './dial-back.js';
export {
  RendezvousError, RendezvousProtocolError, RendezvousVerifyError,
  type ProtocolFailure, type RendezvousErrorReason, type VerifyFailure,
} from './errors.js';
export * from './messages.js';
export { RttEstimator, startDelays, type StartTimingOptions } from './punch-timing.js';
export { ReflexiveObserver, type ReflexiveObserverOptions, type StunTransport } from './reflexive-observer.js';
export { InMemoryRegistry, type PeerRecord, type Registry } from './registry.js';
export {
  Backoff, PERMANENT_REASONS, ReconnectingRendezvousClient, isPermanent,
  type DisconnectInfo, type ReconnectInfo, type ReconnectOptions, type ReconnectingClientOptions,
} from './reconnecting-client.js';
export { ReplayCache } from './replay-cache.js';
export { MAX_REQUESTS_IN_FLIGHT, PendingRequests } from './requests.js';
export { RendezvousServer } from './server.js';
export {
  DEFAULT_RENDEZVOUS_LIMITS, type RendezvousLimits, type RendezvousServerOptions, type RendezvousServerStats,
} from './server-options.js';
export { DOMAIN, bodyHash, openSigned, peekSigned, signObject, type SignatureDomain } from './signed.js';
export { TokenBucket } from '../token-bucket.js';
export {
  DEFAULT_TRICKLE_LIMITS, MAX_TRICKLE_SESSIONS, TrickleSessions,
  type TrickleCandidate, type TrickleLimits, type TrickledCandidates,
} from './trickle.js';
