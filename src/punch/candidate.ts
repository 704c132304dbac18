import type { TransportAddress } from '../wire/index.js';

/**
 * Candidate kinds in ICE's words (RFC 8445 §5.1.1): host (an interface address: reaches peers
 * on the same LAN), server-reflexive (the NAT mapping STUN saw), peer-reflexive (a source a
 * verified check arrived from, learned during punching).
 */
export type CandidateType = 'host' | 'srflx' | 'prflx';

export interface Candidate {
  type: CandidateType;
  address: TransportAddress;
}

/**
 * Preference between working pairs: a LAN path beats a path through the NAT (shorter, and no
 * hairpin needed), and a mapping we were told of beats one we stumbled on (RFC 8445 §5.1.2.2
 * type preferences: host 126 > prflx 110 > srflx 100 — natpunch prefers srflx over prflx because
 * with one socket per peer, a prflx pair differs from an srflx one only by a NAT rebinding).
 */
export const TYPE_PREFERENCE: Record<CandidateType, number> = { host: 3, srflx: 2, prflx: 1 };

/** Classify a text endpoint as host (private/loopback/link-local/CGN) or server-reflexive from its bytes. */
export function candidateTypeOf(address: TransportAddress): CandidateType {
  if (address.family === 6) {
    const a = address.address.toLowerCase();
    return a === '::1' || a.startsWith('fe80:') || a.startsWith('fc') || a.startsWith('fd') ? 'host' : 'srflx';
  }
  const [a, b] = address.address.split('.').map(Number) as [number, number];
  const isPrivate = a === 10 || a === 127 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254);
  return isPrivate ? 'host' : 'srflx';
}
