/**
 * A NAT's TCP side, as the lab's Linux routers behave (src/lab/nat-ruleset.ts): each connection
 * is a conntrack flow, and a segment from outside gets in only as part of a flow an inside host
 * started. The lab's DNAT rules that make full and restricted cones admit strangers match UDP
 * only, so for TCP every kind filters by address and port, whatever its UDP filtering (RFC 4787
 * §5 words; RFC 5382 §4.3 for TCP). The external port of a new flow comes from the NAT's
 * mapping table with `protocol: 'tcp'` (src/sim/nat.ts): endpoint-independent and port-preserving
 * for the cone kinds (the lab's `int2ext` map covers TCP), a new port per flow for the symmetric
 * ones, the sequential counter shared with UDP.
 *
 * What conntrack does that TCP punching depends on (NATLAB-FACTS "Hole-punching facts"):
 * - an outbound SYN starts a flow (SYN_SENT), whose reply tuple is the hole: the far peer's SYN
 *   arriving on it is a simultaneous open (conntrack's SYN_SENT2) and is let in;
 * - a RST arriving on a flow closes it (CLOSE): the flow's later inbound segments, the far
 *   peer's SYN included, are INVALID and treated as unsolicited, until a new outbound SYN on the
 *   same tuple reopens it;
 * - an unsolicited segment is dropped, or, with the lab's `tcpUnsolicited: 'rst'`, answered with
 *   a RST (`reject with tcp reset`; never a RST for a RST).
 *
 * Flow lifetimes are Linux's defaults (nf_conntrack_tcp_timeout_*), refreshed by every segment.
 * Not modelled: sequence-window checks (tcp_in_window), the loose pickup of mid-stream segments
 * (an outbound segment other than a SYN starts nothing), TCP hairpinning.
 *
 * @see RFC 5382 (NAT behavioural requirements for TCP) §4.3 (filtering), §5 (simultaneous open)
 */
import type { Datagram, DropReason } from './network.js';
import { type Endpoint, type Nat, endpointKey } from './nat.js';
import { DEFAULT_TTL, resetFor } from './tcp-segment.js';

/** Linux conntrack's TCP states, those the sim tells apart. */
export type FlowState = 'syn-sent' | 'syn-sent2' | 'syn-recv' | 'established' | 'fin' | 'close';

/** nf_conntrack_tcp_timeout_* defaults, in ms. */
const FLOW_TIMEOUT_MS: Record<FlowState, number> = {
  'syn-sent': 120_000,
  'syn-sent2': 120_000,
  'syn-recv': 60_000,
  established: 432_000_000,
  fin: 120_000,
  close: 10_000,
};

interface Flow {
  internal: Endpoint;
  remote: Endpoint;
  external: Endpoint;
  state: FlowState;
  expiresAt: number;
}

export interface FlowView {
  internal: Endpoint;
  external: Endpoint;
  remote: Endpoint;
  state: FlowState;
}

/** What becomes of a segment: forwarded (translated), dropped, or refused with a RST sent back. */
export type TcpVerdict =
  | { action: 'forward'; datagram: Datagram }
  | { action: 'drop'; reason: DropReason }
  | { action: 'reject'; reset: Datagram };

export class TcpConntrack {
  readonly #nat: Nat;
  readonly #unsolicited: 'drop' | 'rst';
  /** By original tuple "internal>remote". */
  readonly #byOriginal = new Map<string, Flow>();
  /** By reply tuple "remote>external". */
  readonly #byReply = new Map<string, Flow>();

  constructor(nat: Nat, options: { unsolicited?: 'drop' | 'rst' } = {}) {
    this.#nat = nat;
    this.#unsolicited = options.unsolicited ?? 'drop';
  }

  /** A segment from inside, to `d.dst` beyond the NAT. */
  outbound(d: Datagram, now: number): TcpVerdict {
    const h = d.tcp!;
    let flow = this.#live(this.#byOriginal.get(`${endpointKey(d.src)}>${endpointKey(d.dst)}`), now);
    if (flow?.state === 'close' && h.syn && !h.ack) {
      // A new SYN on a closed flow's tuple starts it again (conntrack replaces the CLOSE entry).
      this.#forget(flow);
      flow = undefined;
    }
    if (flow === undefined) {
      if (!h.syn || h.ack) return { action: 'drop', reason: 'filtered' };
      const external = this.#nat.outbound(d.src, d.dst, now, 'tcp');
      if (external === undefined) return { action: 'drop', reason: 'no-port' };
      flow = { internal: { ...d.src }, remote: { ...d.dst }, external, state: 'syn-sent', expiresAt: 0 };
      this.#byOriginal.set(`${endpointKey(flow.internal)}>${endpointKey(flow.remote)}`, flow);
      this.#byReply.set(`${endpointKey(flow.remote)}>${endpointKey(external)}`, flow);
    } else {
      // Outbound traffic keeps the endpoint-independent mapping alive for new flows from the same port.
      this.#nat.outbound(d.src, d.dst, now, 'tcp');
    }
    if (h.rst) flow.state = 'close';
    else if (h.fin) flow.state = 'fin';
    else if (h.ack && !h.syn && (flow.state === 'syn-recv' || flow.state === 'syn-sent2')) flow.state = 'established';
    flow.expiresAt = now + FLOW_TIMEOUT_MS[flow.state];
    return { action: 'forward', datagram: { ...d, src: { ...flow.external } } };
  }

  /** A segment from beyond the NAT, to `d.dst` (one of its external endpoints, or, for a firewall, an inside host). */
  inbound(d: Datagram, now: number): TcpVerdict {
    const h = d.tcp!;
    const flow = this.#live(this.#byReply.get(`${endpointKey(d.src)}>${endpointKey(d.dst)}`), now);
    if (flow === undefined || flow.state === 'close') {
      // No flow, or a closed one (whose segments conntrack calls INVALID): unsolicited.
      if (this.#unsolicited === 'drop' || h.rst) return { action: 'drop', reason: 'filtered' };
      const reset = resetFor(h, d.payload.length)!;
      return { action: 'reject', reset: { src: { ...d.dst }, dst: { ...d.src }, payload: Buffer.alloc(0), tcp: reset, ttl: DEFAULT_TTL } };
    }
    if (h.rst) flow.state = 'close';
    else if (h.syn && !h.ack && flow.state === 'syn-sent') flow.state = 'syn-sent2';
    else if (h.syn && h.ack && flow.state === 'syn-sent') flow.state = 'syn-recv';
    else if (h.fin) flow.state = 'fin';
    else if (h.ack && !h.syn && flow.state === 'syn-recv') flow.state = 'established';
    flow.expiresAt = now + FLOW_TIMEOUT_MS[flow.state];
    return { action: 'forward', datagram: { ...d, dst: { ...flow.internal } } };
  }

  /** Forget every flow, as `conntrack -F` does (the NAT's mappings are flushed separately). */
  flush(): void {
    this.#byOriginal.clear();
    this.#byReply.clear();
  }

  /** The live flows at `now`, for tests and traces. */
  flows(now: number): FlowView[] {
    return [...this.#byOriginal.values()].filter((f) => f.expiresAt > now).map((f) => ({
      internal: { ...f.internal }, external: { ...f.external }, remote: { ...f.remote }, state: f.state,
    }));
  }

  #live(flow: Flow | undefined, now: number): Flow | undefined {
    if (flow === undefined || flow.expiresAt > now) return flow;
    this.#forget(flow);
    return undefined;
  }

  #forget(flow: Flow): void {
    this.#byOriginal.delete(`${endpointKey(flow.internal)}>${endpointKey(flow.remote)}`);
    this.#byReply.delete(`${endpointKey(flow.remote)}>${endpointKey(flow.external)}`);
  }
}
