export { generateIdentity, identityFromPrivateKey, verify, SIGNATURE_LENGTH, type Identity } from './identity.js';
export { defaultKeyFile, KeyFileError, loadOrCreateIdentity } from './key-file.js';
export {
  InvalidPeerIdError,
  isPeerId,
  normalizePeerId,
  PEER_ID_LENGTH,
  PEER_ID_VERSION,
  peerIdFromPublicKey,
  publicKeyFromPeerId,
} from './peer-id.js';
