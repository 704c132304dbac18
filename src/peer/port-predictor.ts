/**
 * The peer's side of port prediction (src/punch/port-prediction.ts): learn once, after the
 * first registration, whether this host's NAT allocates ports from a counter; and then, for each
 * intent or accept it signs, sample the counter with one fresh socket and sign the window its
 * punching socket's next flows will take as a `predicted` candidate.
 *
 * Everything here is best effort with small, fixed budgets: a sample that does not come back
 * in SAMPLE_BUDGET_MS leaves the offer without a predicted candidate (the relay remains), and
 * nothing waits on the start-up classification.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { debuglog } from 'node:util';
import { deadlineOn } from '../deadline.js';
import { type Clock, realClock } from '../clock.js';
import { StunUdpClient } from '../stun/udp-client.js';
import { AttrType, getAttribute, otherAddress, reflexiveAddress, type TransportAddress } from '../wire/index.js';
import type { LocalCandidate, PortRange } from '../punch/candidate.js';
import { type AllocationPattern, CLASSIFY_SAMPLES, patternOf, predictWindow } from '../punch/port-prediction.js';

const debug = debuglog('natpunch:prediction');

/**
 * Longest one sample may delay an intent or accept: a Binding to the rendezvous server's STUN
 * port, which the registration has just shown answers within a round trip. Two transmissions
 * (RFC 8489 §6.2.1's RTO of 500 ms would allow one) keep one lost datagram from costing the
 * prediction.
 */
export const SAMPLE_BUDGET_MS = 600;
const SAMPLE_RETRANSMISSION = { rto: 250, rc: 2, rm: 1 };
/** How long one sample answers for (one offer's UDP and TCP candidates). */
const SAMPLE_REUSE_MS = 1_000;

/** A fresh UDP socket, bound, for one sample; undefined if it cannot bind. */
async function freshSocket(family: 4 | 6, bindAddress: string | undefined, createSocket: (type: 'udp4' | 'udp6') => dgram.Socket): Promise<dgram.Socket | undefined> {
  const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
  socket.on('error', () => {});
  try {
    socket.bind(0, bindAddress);
    await once(socket, 'listening');
    return socket;
  } catch (error) {
    debug('no socket to sample with: %s', (error as Error).message);
    socket.close();
    return undefined;
  }
}

/**
 * One Binding from `socket` (sent before this returns its promise, so samples started one after
 * another leave in that order): the local and mapped port, or undefined. Closes the socket.
 */
function sample(socket: dgram.Socket, server: TransportAddress, signal: AbortSignal, clock: Clock): Promise<{ local: number; mapped: number } | undefined> {
  const stun = new StunUdpClient(socket, { retransmission: SAMPLE_RETRANSMISSION, clock });
  const budget = deadlineOn(clock, SAMPLE_BUDGET_MS, signal);
  return stun.request(server, { signal: budget.signal }).then(
    (response) => {
      const mapped = reflexiveAddress(response.message);
      return mapped ? { local: socket.address().port, mapped: mapped.port } : undefined;
    },
    (error: Error) => {
      debug('sample toward %s:%d: %s', server.address, server.port, error.message);
      return undefined;
    },
  ).finally(() => {
    budget.clear();
    stun.close();
    socket.close();
  });
}

/**
 * Whether this NAT maps one socket to different ports toward different destinations (RFC 4787
 * §4.1: address- or address-and-port-dependent mapping), as RFC 5780 §4.3 tests it: one socket,
 * a Binding to the server, then one to the OTHER-ADDRESS that answer names. Undefined when the
 * server names no other address or does not answer.
 */
async function mapsPerDestination(
  server: TransportAddress, bindAddress: string | undefined, signal: AbortSignal, createSocket: (type: 'udp4' | 'udp6') => dgram.Socket, clock: Clock,
): Promise<boolean | undefined> {
  const socket = await freshSocket(server.family, bindAddress, createSocket);
  if (!socket) return undefined;
  const stun = new StunUdpClient(socket, { retransmission: SAMPLE_RETRANSMISSION, clock });
  const budget = deadlineOn(clock, 2 * SAMPLE_BUDGET_MS, signal);
  try {
    const first = await stun.request(server, { signal: budget.signal });
    const other = getAttribute(first.message, AttrType.OtherAddress);
    const mapped = reflexiveAddress(first.message);
    if (!other || !mapped) return undefined;
    const second = reflexiveAddress((await stun.request(otherAddress.decode(other), { signal: budget.signal })).message);
    return second ? second.port !== mapped.port || second.address !== mapped.address : undefined;
  } catch (error) {
    debug('mapping test toward %s:%d: %s', server.address, server.port, (error as Error).message);
    return undefined;
  } finally {
    budget.clear();
    stun.close();
    socket.close();
  }
}

export class PortPredictor {
  #pattern: AllocationPattern | undefined;
  readonly #bindAddress: string | undefined;
  readonly #createSocket: (type: 'udp4' | 'udp6') => dgram.Socket;
  readonly #clock: Clock;
  #classifying: Promise<AllocationPattern> | undefined;
  #randomPerDestination = false;
  #last: { at: number; window: { port: number; range: PortRange } | undefined } | undefined;
  /** Aborts every sample in flight when the peer closes. */
  readonly #closed = new AbortController();

  /** `createSocket` and `clock` default to node:dgram and real time (src/sim passes its own). */
  constructor(options: { bindAddress?: string; createSocket?: (type: 'udp4' | 'udp6') => dgram.Socket; clock?: Clock } = {}) {
    this.#bindAddress = options.bindAddress;
    this.#createSocket = options.createSocket ?? ((type) => dgram.createSocket(type));
    this.#clock = options.clock ?? realClock;
  }

  /**
   * This NAT picks a random port per destination (symmetric-random): known once classify() ran.
   * Signed into offers (IntentBody.natMapping) so that the other side may try birthday probing.
   */
  get randomPerDestination(): boolean {
    return this.#randomPerDestination;
  }

  /** What start-up found (undefined until it ran). */
  get pattern(): AllocationPattern | undefined {
    return this.#pattern;
  }

  /**
   * Samples CLASSIFY_SAMPLES fresh sockets toward `server` and keeps the pattern. The Bindings
   * leave together, one socket after another within one turn of the event loop, so the NAT
   * creates their flows in that order: samples are kept in send order, whatever order the
   * answers come back in, and the whole classification takes one round trip.
   */
  classify(server: TransportAddress): Promise<AllocationPattern> {
    this.#classifying ??= (async () => {
      const sockets = await Promise.all(Array.from({ length: CLASSIFY_SAMPLES }, () => freshSocket(server.family, this.#bindAddress, this.#createSocket)));
      const answers = await Promise.all(sockets.map((socket) => socket && sample(socket, server, this.#closed.signal, this.#clock)));
      const samples = answers.filter((a): a is { local: number; mapped: number } => a !== undefined);
      this.#pattern = patternOf(samples);
      // Neither preserved nor counted: random ports. Per destination too, it is the NAT birthday
      // probing is for (the other side cannot aim at any one port).
      if (this.#pattern.kind === 'other' && samples.length >= 3 && samples.some((s) => s.local !== s.mapped)) {
        this.#randomPerDestination = await mapsPerDestination(server, this.#bindAddress, this.#closed.signal, this.#createSocket, this.#clock) === true;
      }
      debug('port allocation toward %s:%d: %o from %o', server.address, server.port, this.#pattern, samples);
      return this.#pattern;
    })();
    return this.#classifying;
  }

  /**
   * For a sequential NAT: the window this host's next flows will take, from a fresh sample
   * toward `server`; otherwise undefined. One offer's UDP and TCP candidates ask one after the
   * other, and the NAT's counter is the same for both (the lab's counts every flow), so a sample
   * younger than SAMPLE_REUSE_MS answers both: a second sample would itself take a value.
   */
  async window(server: TransportAddress): Promise<{ port: number; range: PortRange } | undefined> {
    // A connect right after start-up waits for the classification (one round trip, and one more
    // for the mapping test behind random ports) rather than sign an offer without the window it
    // may need, or without natMapping, which the offer reads after its candidates (the pattern
    // is known a round trip before the mapping test: the sim caught an offer signed in between).
    const pattern = this.#classifying ? await this.#classifying : this.#pattern;
    if (pattern?.kind !== 'sequential') return undefined;
    if (this.#last && this.#clock.now() - this.#last.at < SAMPLE_REUSE_MS) return this.#last.window;
    const socket = await freshSocket(server.family, this.#bindAddress, this.#createSocket);
    const now = socket && await sample(socket, server, this.#closed.signal, this.#clock);
    const predicted = now ? predictWindow(now.mapped, pattern.delta) : undefined;
    if (predicted) debug('counter at %d (delta %d): predicting %d in %d..%d', now!.mapped, pattern.delta, predicted.port, predicted.range.first, predicted.range.last);
    this.#last = { at: this.#clock.now(), window: predicted };
    return predicted;
  }

  /** The predicted candidate of `transport` at `publicIp` (the srflx address of that transport), or undefined. */
  async candidate(server: TransportAddress, publicIp: string): Promise<LocalCandidate | undefined> {
    const predicted = await this.window(server);
    return predicted && { type: 'predicted', address: { family: server.family, address: publicIp, port: predicted.port }, range: predicted.range };
  }

  /** Stops sampling (the peer is closing). */
  close(): void {
    this.#closed.abort();
  }
}
