/**
 * The tag that names an existing connection in a re-punch intent (IntentBody.resume): both ends
 * derive it from their Noise session's handshake hash, which only they know, so the rendezvous
 * server learns a label and nothing else, and cannot attach a stranger's punch to a connection
 * (the intent carrying the tag is signed by the peer itself, and the tag must match a connection
 * with that very peer).
 */
import { createHash } from 'node:crypto';
import type { SecureSession } from '../secure/index.js';

const LABEL = new TextEncoder().encode('natpunch/1 resume');
export const RESUME_TAG_LENGTH = 16;

/** base64 of the first 16 bytes of SHA-256("natpunch/1 resume" || h). */
export function resumeTag(session: SecureSession): string {
  return createHash('sha256').update(LABEL).update(session.handshakeHash).digest().subarray(0, RESUME_TAG_LENGTH).toString('base64');
}
