/**
 * Trickled candidates, the peer's side: candidates found after the intent or accept (a port
 * mapping, a relay allocation, a prediction) travel in a `trickle`, signed by the sending peer
 * over the session id and the candidates, and reach the other peer as `candidates`.
 *
 * A receiver takes them only for a session it has a verified punch for, only from the peer of
 * that session (verified with that peer's key: the server cannot add any), only in increasing
 * `seq` (no replays), only within the allowance both sides and the server share, and only while
 * the session's trickle window lasts. So the rule "no packet to an address a peer did not learn
 * from a verified source" holds for trickled candidates as for the offer's.
 * @see RFC 8838 (Trickle ICE), docs/decisions/004-rendezvous-protocol.md ("Trickle")
 */
import { UsageError } from '../errors.js';
import type { Identity } from '../identity/index.js';
import {
  type CandidateTransport, type CandidateType, type LocalCandidate, type SignalledCandidate, prioritise,
} from '../punch/candidate.js';
import { RendezvousError, RendezvousProtocolError, RendezvousVerifyError } from './errors.js';
import {
  type CandidatesMessage, type MessageLimits, type Signed, type TrickleBody, candidateRecord, fromCandidateRecord, toCandidateRecord,
  validateTrickleBody,
} from './messages.js';
import { DOMAIN, openSigned, signObject } from './signed.js';

export interface TrickleLimits {
  /** How long after the punch a session takes trickled candidates (default 30 s). */
  windowMs: number;
  /** `trickle` messages one peer may send per session (default 8). */
  maxMessages: number;
  /** Candidates one peer may trickle per session, all messages together (default 32). */
  maxCandidates: number;
}

/** Shared by the server and the clients, so a sender stops where the server and receiver would. */
export const DEFAULT_TRICKLE_LIMITS: Readonly<TrickleLimits> = Object.freeze({ windowMs: 30_000, maxMessages: 8, maxCandidates: 32 });

/** Sessions a client keeps open for trickling at once (the oldest is dropped beyond it). */
export const MAX_TRICKLE_SESSIONS = 64;

/** A candidate to trickle: a local candidate and the transport it is for. */
export interface TrickleCandidate extends LocalCandidate {
  transport: CandidateTransport;
}

/** What the 'candidates' event and `onCandidates` listeners get: verified, typed. */
export interface TrickledCandidates {
  session: string;
  /** The other peer of the session, whose signature these candidates carry. */
  peer: string;
  candidates: SignalledCandidate[];
  /** The peer has no more candidates for this session (RFC 8838 §8.2 end-of-candidates). */
  end: boolean;
}

interface Session {
  peer: string;
  /** This side signed 'trickle' into its intent/accept: it takes trickled candidates. */
  receives: boolean;
  /** The other peer signed 'trickle': it takes ours. */
  sends: boolean;
  /** Local preferences used so far per transport and type, so trickled priorities stay unique. */
  used: Record<CandidateTransport, Map<CandidateType, number>>;
  sent: { messages: number; candidates: number; ended: boolean };
  received: { seq: number; messages: number; candidates: number; ended: boolean; batches: TrickledCandidates[] };
  listeners: Set<(batch: TrickledCandidates) => void>;
  timer: NodeJS.Timeout;
}

export interface OpenTrickle {
  peer: string;
  receives: boolean;
  sends: boolean;
  /** The candidates this side signed into its intent/accept (to continue their local preferences). */
  local: readonly SignalledCandidate[];
}

export class TrickleSessions {
  readonly #limits: TrickleLimits;
  readonly #messageLimits: MessageLimits;
  readonly #sessions = new Map<string, Session>();

  constructor(limits: TrickleLimits, messageLimits: MessageLimits) {
    this.#limits = limits;
    this.#messageLimits = messageLimits;
  }

  /** Opens `session` for trickling once its punch is verified; it closes after the window. */
  open(session: string, options: OpenTrickle): void {
    this.#close(session);
    if (this.#sessions.size >= MAX_TRICKLE_SESSIONS) this.#close(this.#sessions.keys().next().value!);
    const used = { udp: new Map<CandidateType, number>(), tcp: new Map<CandidateType, number>() };
    for (const c of options.local) used[c.transport].set(c.type, (used[c.transport].get(c.type) ?? 0) + 1);
    const timer = setTimeout(() => this.#close(session), this.#limits.windowMs);
    timer.unref();
    this.#sessions.set(session, {
      peer: options.peer, receives: options.receives, sends: options.sends, used,
      sent: { messages: 0, candidates: 0, ended: false },
      received: { seq: 0, messages: 0, candidates: 0, ended: false, batches: [] },
      listeners: new Set(), timer,
    });
  }

  /**
   * The signed body of this side's next trickle for `session`.
   * @throws RendezvousError 'unknown-session' (no punch, or the window closed), 'unsupported-capability'
   *   (the other peer did not sign 'trickle'), 'trickle-limit'; UsageError (a candidate no peer may be aimed at)
   */
  sign(identity: Identity, session: string, candidates: readonly TrickleCandidate[], end: boolean): Signed {
    const s = this.#sessions.get(session);
    if (!s) throw new RendezvousError('unknown-session', `rendezvous trickle: no punched session ${session} within the last ${this.#limits.windowMs} ms`, { ref: session });
    if (!s.sends) throw new RendezvousError('unsupported-capability', `rendezvous trickle: ${s.peer} did not sign the 'trickle' capability for session ${session}`, { ref: session });
    if (s.sent.ended) throw new RendezvousError('trickle-limit', `rendezvous trickle: end-of-candidates was already sent for session ${session}`, { ref: session });
    const typed = (['udp', 'tcp'] as const).flatMap((t) => prioritise(candidates.filter((c) => c.transport === t), t, s.used[t]));
    if (s.sent.messages + 1 > this.#limits.maxMessages || s.sent.candidates + typed.length > this.#limits.maxCandidates) {
      throw new RendezvousError('trickle-limit', `rendezvous trickle: session ${session} allows ${this.#limits.maxMessages} messages and ${this.#limits.maxCandidates} candidates; ${s.sent.messages} and ${s.sent.candidates} sent, ${typed.length} more asked`, { ref: session });
    }
    const records = typed.map(toCandidateRecord);
    try {
      records.forEach((r, i) => candidateRecord(r, `candidates[${i}]`));
      const body: TrickleBody = { session, seq: s.sent.messages + 1, candidates: records, ...(end ? { end: true } : {}) };
      validateTrickleBody(body, this.#messageLimits, 'trickle');
    } catch (error) {
      if (error instanceof RendezvousProtocolError) throw new UsageError(`rendezvous trickle: ${error.message}`);
      throw error;
    }
    s.sent.messages++;
    s.sent.candidates += records.length;
    s.sent.ended = end;
    return signObject(identity, DOMAIN.trickle, { session, seq: s.sent.messages, candidates: records, ...(end ? { end: true } : {}) });
  }

  /**
   * Verifies forwarded candidates and hands them to the session's listeners.
   * @throws RendezvousVerifyError: 'mismatch' (no such session, or this side did not offer
   *   trickle), 'bad-signature' (not signed by the session's peer), 'invalid', 'replayed' (a seq
   *   seen before), 'busy' (beyond the allowance or after end-of-candidates)
   */
  receive(message: CandidatesMessage): TrickledCandidates {
    const s = this.#sessions.get(message.session);
    if (!s) throw new RendezvousVerifyError('mismatch', `candidates.session: ${message.session} is not a session punched within the last ${this.#limits.windowMs} ms`);
    if (!s.receives) throw new RendezvousVerifyError('mismatch', `candidates.session: this peer did not offer 'trickle' for session ${message.session}`);
    const body = validateTrickleBody(openSigned(message.signed, DOMAIN.trickle, s.peer), this.#messageLimits, 'candidates.signed.body');
    if (body.session !== message.session) throw new RendezvousVerifyError('mismatch', `candidates.signed.body.session: ${body.session}, expected ${message.session}`);
    if (body.seq <= s.received.seq) throw new RendezvousVerifyError('replayed', `candidates.signed.body.seq: ${body.seq}, already at ${s.received.seq}`);
    if (s.received.ended) throw new RendezvousVerifyError('busy', `candidates: ${s.peer} already sent end-of-candidates for session ${message.session}`);
    if (s.received.messages + 1 > this.#limits.maxMessages || s.received.candidates + body.candidates.length > this.#limits.maxCandidates) {
      throw new RendezvousVerifyError('busy', `candidates: session ${message.session} allows ${this.#limits.maxMessages} messages and ${this.#limits.maxCandidates} candidates per peer`);
    }
    s.received.seq = body.seq;
    s.received.messages++;
    s.received.candidates += body.candidates.length;
    s.received.ended = body.end === true;
    const batch: TrickledCandidates = { session: message.session, peer: s.peer, candidates: body.candidates.map(fromCandidateRecord), end: s.received.ended };
    s.received.batches.push(batch);
    for (const listener of [...s.listeners]) listener(batch);
    return batch;
  }

  /**
   * Calls `listener` with every batch of verified candidates for `session`: those already
   * received at once, then each new one, until the window closes or the returned function is
   * called. A session not (yet) punched gets nothing.
   */
  subscribe(session: string, listener: (batch: TrickledCandidates) => void): () => void {
    const s = this.#sessions.get(session);
    if (!s) return () => undefined;
    for (const batch of s.received.batches) listener(batch);
    s.listeners.add(listener);
    return () => s.listeners.delete(listener);
  }

  clear(): void {
    for (const session of [...this.#sessions.keys()]) this.#close(session);
  }

  #close(session: string): void {
    const s = this.#sessions.get(session);
    if (!s) return;
    clearTimeout(s.timer);
    s.listeners.clear();
    this.#sessions.delete(session);
  }
}
