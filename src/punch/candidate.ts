import { isIPv4 } from 'node:net';
import { ipToBytes, type TransportAddress } from '../wire/index.js';

/**
 * Candidate types in ICE's words (RFC 8445 §5.1.1), and the ones natpunch adds for its hard-NAT
 * and relay work:
 * - host: an interface address (reaches peers on the same LAN);
 * - srflx (server-reflexive): the NAT mapping a STUN server saw;
 * - prflx (peer-reflexive): a source a verified check arrived from, learned during punching;
 * - relay (relayed): an address allocated on a TURN server (RFC 8656 §2);
 * - mapped: a public address the NAT itself was asked to forward (UPnP-IGD, NAT-PMP RFC 6886,
 *   PCP RFC 6887): like srflx, but the NAT promised it;
 * - predicted: a port the NAT has not allocated yet, guessed from its allocation pattern, with
 *   the window of ports to probe around it (`range`).
 */
export type CandidateType = 'host' | 'srflx' | 'prflx' | 'relay' | 'mapped' | 'predicted';

export const CANDIDATE_TYPES: readonly CandidateType[] = ['host', 'srflx', 'prflx', 'relay', 'mapped', 'predicted'];

export type CandidateTransport = 'udp' | 'tcp';

/** What the connectivity checks need of a candidate: where, and what kind it is. */
export interface Candidate {
  type: CandidateType;
  address: TransportAddress;
}

/** A window of ports, both ends included. */
export interface PortRange {
  first: number;
  last: number;
}

/**
 * A candidate as peers signal it (in signed intents, accepts and trickled candidates): typed by
 * its signer, never guessed from its bytes.
 * @see RFC 8445 §5.1 (gathering), RFC 8839 §5.1 (the fields an ICE candidate carries)
 */
export interface SignalledCandidate extends Candidate {
  transport: CandidateTransport;
  /** RFC 8445 §5.1.2.1: 2^24 × type preference + 2^8 × local preference + (256 − component ID). */
  priority: number;
  /** Only on 'predicted' candidates: the ports to probe, `address.port` among them. */
  range?: PortRange;
}

/** A candidate this peer offers, before it is prioritised and signed. */
export interface LocalCandidate {
  type: CandidateType;
  address: TransportAddress;
  range?: PortRange;
}

/**
 * Type preferences (RFC 8445 §5.1.2.2: 0-126, identical for all candidates of one type). Used
 * both in the priority formula and to choose between working pairs: a LAN path beats a path
 * through the NAT (shorter, no hairpin), a mapping the NAT promised (mapped) beats one a STUN
 * server saw, and a relay comes last (RFC 8445 §5.1.2.2 recommends 0 for relayed).
 * natpunch ranks srflx above prflx, against RFC 8445 §5.1.2.1 ("peer-reflexive MUST be higher
 * than server-reflexive"): with one socket per peer, a prflx pair differs from an srflx one only
 * by a NAT rebinding, and the signed, STUN-proven address is the one to keep. predicted ranks
 * below srflx: it is a guess.
 */
export const TYPE_PREFERENCE: Record<CandidateType, number> = {
  host: 126, mapped: 110, srflx: 100, prflx: 90, predicted: 50, relay: 0,
};

/** natpunch has one component per session (RFC 8445 §5.1.2.1: component IDs 1-256). */
export const COMPONENT_ID = 1;

/** Highest priority RFC 8445 §5.1.2.1 allows: a positive integer below 2^31. */
export const MAX_PRIORITY = 2 ** 31 - 1;

/**
 * Probing budget of predicted candidates, explicit and bounded like every other (ARCHITECTURE
 * non-negotiables): a window of at most 64 ports around the guess, and at most 4 predicted
 * candidates per signed object, so one offer can aim the other peer at 256 ports at most. A
 * sequential NAT (RFC 4787 §4.1; `natpunch check` reports the pattern) hands the next port to
 * whichever host asks next; the window absorbs other hosts' allocations during one punch. The
 * window a peer actually signs is smaller (port-prediction.ts PREDICTION_WINDOW: 16).
 */
export const PREDICTION_BUDGET = Object.freeze({ maxWindow: 64, maxCandidates: 4 });

/**
 * Candidate priority. @see RFC 8445 §5.1.2.1
 * @param localPreference 0-65535: distinguishes candidates of one type (RFC 8445 §5.1.2.2)
 */
export function candidatePriority(type: CandidateType, localPreference: number, componentId = COMPONENT_ID): number {
  if (!Number.isInteger(localPreference) || localPreference < 0 || localPreference > 65_535) {
    throw new RangeError(`candidatePriority: local preference ${localPreference}, expected an integer in 0..65535`);
  }
  if (!Number.isInteger(componentId) || componentId < 1 || componentId > 256) {
    throw new RangeError(`candidatePriority: component ID ${componentId}, expected an integer in 1..256`);
  }
  return 2 ** 24 * TYPE_PREFERENCE[type] + 2 ** 8 * localPreference + (256 - componentId);
}

/**
 * Prioritises a peer's own candidates in the order given: each type gets local preferences
 * counting down from the top of its transport's band, so earlier candidates of one type (the
 * first interface, the kept mapping) rank first, and no two of one type share a priority
 * (RFC 8445 §5.1.2.1). UDP takes the upper band (65535 down), TCP the lower (32767 down):
 * natpunch prefers UDP, as `--transport auto` does. `used` counts candidates of each type
 * already prioritised for this session (trickled ones continue where the offer stopped). A
 * candidate repeated (same address) keeps its first type.
 */
export function prioritise(
  candidates: readonly LocalCandidate[], transport: CandidateTransport, used: Map<CandidateType, number> = new Map(),
): SignalledCandidate[] {
  const top = transport === 'udp' ? 65_535 : 32_767;
  const seen = new Set<string>();
  const out: SignalledCandidate[] = [];
  for (const c of candidates) {
    const key = `${c.address.address} ${c.address.port}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const n = used.get(c.type) ?? 0;
    used.set(c.type, n + 1);
    const local = Math.max(0, top - n);
    out.push({ type: c.type, transport, address: c.address, priority: candidatePriority(c.type, local), ...(c.range ? { range: c.range } : {}) });
  }
  return out;
}

/**
 * The remote candidates UDP connectivity checks go to, highest priority first: UDP ones, a
 * predicted candidate as one check target per port of its signed range (the other peer's NAT
 * will map its next flows somewhere in it: port-prediction.ts), nearest the guess first. The
 * range's size was bounded when the signed object was verified (PREDICTION_BUDGET), so this
 * never probes more than the budget; each port is an ordinary pair of the check session, paced
 * like every other.
 *
 * `stride` (default 1) takes every stride-th port of a window first, then the rest. When both
 * sides predict (symmetric-seq × symmetric-seq), each check to a new port is also a new flow on
 * this side's own counting NAT, so a pair only opens where this side's k-th window flow meets
 * the other side's flow to it. With both walking their windows one port per flow, that needs
 * the two sides' flows before their windows (checks to host and srflx candidates) to cancel out,
 * which they never do; one side walking two ports per flow meets the other's walk at some k
 * whatever those counts are, as long as they fit the window (port-prediction.ts).
 */
export function checkCandidates(candidates: readonly SignalledCandidate[], options: { stride?: number } = {}): Candidate[] {
  return punchTargets(candidates, 'udp', options);
}

/** checkCandidates for either transport: what TCP punching connects to is chosen the same way. */
export function punchTargets(candidates: readonly SignalledCandidate[], transport: CandidateTransport, options: { stride?: number } = {}): Candidate[] {
  const stride = Math.max(1, Math.floor(options.stride ?? 1));
  const out: Candidate[] = [];
  for (const c of [...candidates].filter((c) => c.transport === transport).sort((a, b) => b.priority - a.priority)) {
    if (c.type !== 'predicted' || c.range === undefined) {
      out.push({ type: c.type, address: c.address });
      continue;
    }
    const guess = c.address.port;
    const ports: number[] = [];
    for (let port = c.range.first; port <= c.range.last; port++) ports.push(port);
    // Stable: equally far on both sides of a guess in the middle, the lower port first.
    ports.sort((a, b) => Math.abs(a - guess) - Math.abs(b - guess));
    const ordered = [...ports.filter((_, i) => i % stride === 0), ...ports.filter((_, i) => i % stride !== 0)];
    for (const port of ordered) out.push({ type: 'predicted', address: { ...c.address, port } });
  }
  return out;
}

/**
 * Whether an address is a host address (private, loopback, link-local, unique-local) or else
 * public (CGN space 100.64/10 included: it is a mapping), from its bytes. Only for addresses nobody signalled a type for (the TCP
 * punch's choice of when to prime); signalled candidates carry their type.
 */
export function candidateTypeOf(address: TransportAddress): 'host' | 'srflx' {
  const bytes = ipToBytes(address.address);
  if (!isIPv4(address.address)) {
    const loopback = bytes.subarray(0, 15).every((b) => b === 0) && bytes[15] === 1;
    const linkLocal = bytes[0] === 0xfe && (bytes[1]! & 0xc0) === 0x80;
    const uniqueLocal = (bytes[0]! & 0xfe) === 0xfc;
    return loopback || linkLocal || uniqueLocal ? 'host' : 'srflx';
  }
  const [a, b] = bytes as unknown as [number, number];
  const isPrivate = a === 10 || a === 127 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254);
  return isPrivate ? 'host' : 'srflx';
}
