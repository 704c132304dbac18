export { DATAGRAM_OVERHEAD, DatagramCipher, type DatagramCipherOptions } from './datagram-cipher.js';
export { NoiseError, type NoiseFailure } from './errors.js';
export { encodeFrame, FrameDecoder, sealFrame, type MessageSealer } from './framing.js';
export {
  NATPUNCH_PROLOGUE,
  NATPUNCH_PROTOCOL_NAME,
  NatpunchHandshake,
  type NatpunchHandshakeOptions,
} from './natpunch-handshake.js';
export { DEFAULT_REPLAY_WINDOW, ReplayWindow } from './replay-window.js';
export { MAX_PLAINTEXT_LENGTH, type SecureSession } from './secure-session.js';
export {
  HandshakeState,
  MAX_MESSAGE_LENGTH,
  type HandshakeStateOptions,
  type TransportKeys,
} from './handshake-state.js';
export { CipherState } from './cipher-state.js';
export { generateKeyPair, keyPairFromPrivateKey, type KeyPair } from './dh-25519.js';
