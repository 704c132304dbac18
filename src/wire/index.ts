/**
 * The STUN wire codec: pure functions over Uint8Array, no I/O.
 * @see RFC 8489; RFC 5780 §7; RFC 5769 (test vectors)
 */

export * from './constants.js';
export * from './address.js';
export * from './header.js';
export * from './message.js';
export * from './fingerprint.js';
export * from './message-integrity.js';
export * from './credentials.js';
export * from './mapped-address.js';
export * from './xor-mapped-address.js';
export * from './change-request.js';
export * from './response-port.js';
export * from './padding.js';
export * from './error-code.js';
export * from './unknown-attributes.js';
export * from './text-attributes.js';
export * from './password-algorithm.js';
export * from './turn-attributes.js';
