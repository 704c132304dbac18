/**
 * The Prometheus metrics of one `natpunch serve` (docs/metrics.md lists them). Each instance has
 * its own prom-client Registry, never the global default one, so several servers in one process
 * (the tests, `--address` given twice) keep their numbers apart.
 *
 * Two sources, both cheap where it matters:
 * - counters the servers already keep (`stats` of StunServer, TurnServer, RendezvousServer) are
 *   read when scraped: nothing runs per STUN request or relayed datagram for metrics;
 * - what the servers do not count by label (how each connect ended, each error code) arrives as
 *   node:diagnostics_channel messages (src/rendezvous/server-events.ts), filtered to this
 *   instance's rendezvous server and tallied here.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StunServer } from '../stun/server.js';
import type { TurnServer } from '../turn/server.js';
import type { RendezvousServer } from '../rendezvous/server.js';
import type { HttpLimitStats } from '../server/http-limits.js';
import {
  type ConnectEvent, type ErrorEvent, type RegisteredEvent, type ReportEvent, connectChannel, errorChannel, registeredChannel, reportChannel,
} from '../rendezvous/server-events.js';
import { VERSION } from '../version.js';
import { LabelTally } from './label-tally.js';

/** What the metrics are read from; any part may be absent (`--no-relay`, STUN only). */
export interface MetricSources {
  /** The STUN servers of this instance (the primary and one per further --address); summed. */
  stun: readonly StunServer[];
  turn?: TurnServer | undefined;
  rendezvous?: RendezvousServer | undefined;
  /** The HTTP listeners' connection-limit counters (NatpunchServer's httpStats). */
  http?: (() => HttpLimitStats) | undefined;
}

/**
 * Error codes of the rendezvous (and the upgrade's 503) that mean a limit of the server was hit,
 * by the name the `natpunch_limits_hit_total` label carries. Other codes are a client's mistakes.
 */
export const RENDEZVOUS_LIMITS: ReadonlyMap<string, string> = new Map([
  ['rate-limited', 'rate-limited'],
  ['too-many-pending', 'too-many-pending'],
  ['server-full', 'server-full'],
  ['trickle-limit', 'trickle-limit'],
  ['too-large', 'message-too-large'],
  ['max-connections', 'max-connections'],
]);

/** TURN error codes that mean a limit of the relay was hit. @see RFC 8656 §7.2 step 8 (486) */
export const TURN_LIMITS: ReadonlyMap<number, string> = new Map([[486, 'relay-quota']]);

/**
 * Limits the STUN port and the HTTP listeners count themselves (their `stats`), by limit name.
 * Each refuses before any protocol runs, so no error code names them.
 */
const STUN_LIMITS: readonly [string, (stats: StunServer['stats']) => number][] = [
  ['stun-rate-limited', (s) => s.rateLimited],
  ['stun-tcp-connections', (s) => s.tcpRefused + s.tcpEvicted],
  ['stun-tcp-frame-timeout', (s) => s.tcpFrameTimeouts],
  ['stun-tcp-output', (s) => s.tcpOutputDropped],
];
const HTTP_LIMITS: readonly [string, (stats: HttpLimitStats) => number][] = [
  ['http-connections', (s) => s.refused + s.evicted],
  ['http-header-timeout', (s) => s.headerTimeouts],
];

type Labels = Record<string, string>;

/**
 * Buckets of `natpunch_rendezvous_connect_seconds`: a direct path on a LAN or a cone NAT takes
 * tens of ms, punching across continents a few hundred, birthday probing seconds, and a failure
 * waits for the punch's deadline (~10-15 s).
 */
const CONNECT_SECONDS_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 60];

export class ServerMetrics {
  readonly registry = new Registry();
  readonly #sources: MetricSources;
  readonly #connects = new LabelTally();
  readonly #punches = new LabelTally();
  readonly #registrations = new LabelTally();
  readonly #errors = new LabelTally();
  readonly #reports = new LabelTally();
  #connectSeconds: Histogram | undefined;
  readonly #unsubscribe: (() => void)[] = [];

  constructor(sources: MetricSources) {
    this.#sources = sources;
    // process_* and nodejs_* (CPU, memory, event-loop lag, GC, handles), on this registry only.
    collectDefaultMetrics({ register: this.registry });
    this.#define();
    const rendezvous = sources.rendezvous;
    if (rendezvous) {
      this.#subscribe<ConnectEvent>(connectChannel, rendezvous, (e) => {
        this.#connects.add({ outcome: e.outcome, reason: e.reason, initiator_nat: e.initiator, target_nat: e.target });
        if (e.outcome === 'accepted') this.#punches.add({ transport: e.transport ?? 'udp', technique: e.technique ?? 'hole-punch' });
      });
      this.#subscribe<RegisteredEvent>(registeredChannel, rendezvous, (e) => this.#registrations.add({ nat: e.nat }));
      this.#subscribe<ErrorEvent>(errorChannel, rendezvous, (e) => this.#errors.add({ code: e.code }));
      this.#subscribe<ReportEvent>(reportChannel, rendezvous, (e) => {
        this.#reports.add({ role: e.role, outcome: e.outcome, path: e.path, technique: e.technique, initiator_nat: e.initiator, target_nat: e.target });
        // The initiator's clock runs from its connect call: the time a user waits for a connection.
        if (e.role === 'initiator') this.#connectSeconds?.observe({ outcome: e.outcome, path: e.path }, e.ms / 1000);
      });
    }
  }

  /** The Prometheus text exposition (format 0.0.4), with its content type. */
  async exposition(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }

  /** Stops listening to the servers' events (the registry keeps what it had). */
  close(): void {
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
  }

  #subscribe<T extends { server: object }>(channel: { subscribe(f: (m: unknown) => void): void; unsubscribe(f: (m: unknown) => void): unknown }, server: object, onEvent: (event: T) => void): void {
    const listener = (message: unknown): void => {
      if ((message as T).server === server) onEvent(message as T);
    };
    channel.subscribe(listener);
    this.#unsubscribe.push(() => channel.unsubscribe(listener));
  }

  #define(): void {
    const { stun, turn, rendezvous, http } = this.#sources;
    const gauge = (name: string, help: string, read: () => number): void => {
      new Gauge({ name, help, registers: [this.registry], collect() { this.set(read()); } });
    };
    const counter = (name: string, help: string, labelNames: readonly string[], read: () => Iterable<[Labels, number]>): void => {
      new Counter({
        name, help, labelNames, registers: [this.registry],
        collect() {
          // Read, not accumulated: the totals live in the servers (or the tallies) and are copied.
          this.reset();
          for (const [labels, value] of read()) this.inc(labels, value);
        },
      });
    };
    const one = (value: number): Iterable<[Labels, number]> => [[{}, value]];
    const sum = (read: (s: StunServer) => number): number => stun.reduce((total, s) => total + read(s), 0);

    new Gauge({ name: 'natpunch_info', help: 'Always 1; the label says which natpunch version serves.', labelNames: ['version'], registers: [this.registry] }).set({ version: VERSION }, 1);

    counter('natpunch_stun_requests_total', 'STUN Binding requests answered, by transport (udp, tcp, tls) and outcome (success, error).', ['transport', 'outcome'], function* () {
      for (const transport of ['udp', 'tcp', 'tls'] as const) {
        yield [{ transport, outcome: 'success' }, sum((s) => s.stats.byTransport[transport].responses)];
        yield [{ transport, outcome: 'error' }, sum((s) => s.stats.byTransport[transport].errors)];
      }
    });
    counter('natpunch_stun_dropped_total', 'Datagrams and stream messages the STUN port dropped unanswered: not STUN, malformed, or not for this server.', [], () => one(sum((s) => s.stats.dropped)));
    gauge('natpunch_stun_tcp_connections', 'STUN/TURN connections over TCP and TLS open now.', () => sum((s) => s.stats.tcpConnections));

    if (turn) {
      gauge('natpunch_turn_allocations', 'TURN allocations (relayed addresses) active now.', () => turn.stats.allocations);
      counter('natpunch_turn_allocations_total', 'TURN allocations made since start.', [], () => one(turn.stats.allocationsCreated));
      counter('natpunch_turn_requests_total', 'TURN requests (Allocate, Refresh, CreatePermission, ChannelBind) received.', [], () => one(turn.stats.requests));
      counter('natpunch_turn_errors_total', 'TURN error responses sent, by STUN error code (401 challenges included).', ['code'], () =>
        Object.entries(turn.stats.errors).map(([code, n]): [Labels, number] => [{ code }, n]));
      counter('natpunch_turn_relayed_bytes_total', 'Application bytes relayed, by direction: to-peer (client to its peer) and to-client (peer to the client).', ['direction'], () => [
        [{ direction: 'to-peer' }, turn.stats.bytesToPeers], [{ direction: 'to-client' }, turn.stats.bytesToClients],
      ]);
      counter('natpunch_turn_relayed_packets_total', 'Datagrams relayed, both directions.', [], () => one(turn.stats.packetsRelayed));
      gauge('natpunch_turn_fast_path_rules', 'Flows between two of this relay\'s own allocations that its native fast path forwards now (decision 008).', () => turn.stats.fastPathRules);
      counter('natpunch_turn_fast_path_packets_total', 'Datagrams the native fast path passed from one client to another, without JavaScript (each is two of natpunch_turn_relayed_packets_total: in and out).', [], () => one(turn.stats.fastPathDatagrams));
      counter('natpunch_turn_dropped_packets_total', 'Datagrams the relay dropped: no permission or channel, over the bandwidth limit, or to an address it may not reach.', [], () => one(turn.stats.packetsDropped));
    }

    if (rendezvous) {
      gauge('natpunch_rendezvous_connections', 'Rendezvous WebSockets open now, registered or not.', () => rendezvous.stats.connections);
      gauge('natpunch_rendezvous_peers', 'Peers registered now.', () => rendezvous.stats.peers);
      gauge('natpunch_rendezvous_pending_connects', 'Connects waiting for the target\'s answer now.', () => rendezvous.stats.sessions);
      counter('natpunch_rendezvous_messages_total', 'Rendezvous messages received from peers.', [], () => one(rendezvous.stats.messages));
      counter('natpunch_rendezvous_registrations_total', 'Successful registrations, by what the server proved about the peer\'s network (nat: no-udp, public, open, nat).', ['nat'], () => this.#registrations.entries());
      counter('natpunch_rendezvous_connects_total', 'Connects brokered, by how they ended (outcome: accepted, refused, timed-out, abandoned; reason: "peer" or the server\'s error code for refused, which side left for abandoned, else "none") and the NAT class of each side.',
        ['outcome', 'reason', 'initiator_nat', 'target_nat'], () => this.#connects.entries());
      counter('natpunch_rendezvous_punches_total', 'Accepted connects (punch sent to both), by the transport the intent asked for and the technique its signed offers point at (a hint: the server never learns which technique won).',
        ['transport', 'technique'], () => this.#punches.entries());
      counter('natpunch_rendezvous_reports_total', 'How punched sessions ended, as each peer reported it (the \'report\' capability; the peer\'s own word): role (initiator, target), outcome (connected, failed), path and technique of a connection ("none" for failed; techniques the server does not know are "other"), and the NAT class of each side.',
        ['role', 'outcome', 'path', 'technique', 'initiator_nat', 'target_nat'], () => this.#reports.entries());
      this.#connectSeconds = new Histogram({
        name: 'natpunch_rendezvous_connect_seconds', help: 'Time from the initiator\'s connect call to a secure stream (outcome connected, by path) or to its failure, as initiators reported it.',
        labelNames: ['outcome', 'path'], buckets: CONNECT_SECONDS_BUCKETS, registers: [this.registry],
      });
      counter('natpunch_rendezvous_errors_total', 'Error messages the rendezvous answered with, by code (docs/decisions/004-rendezvous-protocol.md).', ['code'], () => this.#errors.entries());
    }

    counter('natpunch_limits_hit_total', 'Times a server limit refused something, by limit name (docs/metrics.md).', ['limit'], () => {
      // Every limit this server has, hit or not: a series that exists from the start lets
      // Prometheus' rate() see its first hit.
      const hits = new Map<string, number>(rendezvous ? [...new Set(RENDEZVOUS_LIMITS.values())].map((limit) => [limit, 0]) : []);
      for (const [{ code }, n] of this.#errors.entries()) {
        const limit = RENDEZVOUS_LIMITS.get(code!);
        if (limit) hits.set(limit, (hits.get(limit) ?? 0) + n);
      }
      for (const [code, limit] of TURN_LIMITS) if (turn) hits.set(limit, turn.stats.errors[code] ?? 0);
      for (const [limit, read] of STUN_LIMITS) hits.set(limit, sum((s) => read(s.stats)));
      if (http) for (const [limit, read] of HTTP_LIMITS) hits.set(limit, read(http()));
      return [...hits].map(([limit, n]): [Labels, number] => [{ limit }, n]);
    });
  }
}
