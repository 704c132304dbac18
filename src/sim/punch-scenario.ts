/**
 * One UDP hole-punching attempt in the sim, set up as a real one is: clients a1 and b1 of the
 * lab topology each open one socket, learn their server-reflexive address from the STUN server
 * through their own NAT, offer host + server-reflexive candidates as the rendezvous passes them
 * on (src/rendezvous/client.ts: private endpoints then srflx, de-duplicated, typed by
 * candidateTypeOf as src/peer does), and run UdpCheckSession against each other from a shared
 * start time. Nothing of the rendezvous itself runs: the candidates and the session key are
 * handed over directly.
 *
 * Also the measure bench/ reports: virtual time from the agreed start to nomination.
 */
import type { NatKind } from '../lab/nat-kind.js';
import { SERVER_ADDRESSES } from '../lab/topology.js';
import { type Candidate, candidateTypeOf } from '../punch/candidate.js';
import { UdpCheckSession, type PunchResult } from '../punch/udp-checks.js';
import { UdpMux } from '../punch/udp-mux.js';
import { StunUdpClient } from '../stun/udp-client.js';
import { type TransportAddress, formatAddress, reflexiveAddress } from '../wire/index.js';
import { once } from 'node:events';
import type { Socket } from 'node:dgram';
import { SimError } from '../errors.js';
import { Prng } from './prng.js';
import { type SimLab, type SimRouterOptions, STUN_PORT, createSimLab, startSimStunServer } from './topology.js';
import type { Router } from './network.js';
import { endpointKey } from './nat.js';

/** How far ahead the rendezvous schedules the start (src/rendezvous: startInMs); any value works in the sim. */
const START_IN_MS = 100;

export interface UdpPunchScenario {
  /** Router a's kind, or its full options. */
  a: NatKind | SimRouterOptions;
  /** Router b's; leave it out to punch between a1 and a2 (give `a` two clients). */
  b?: NatKind | SimRouterOptions;
  /** The two clients (default a1 and b1); the first is the controlling side unless `controlling` says otherwise. */
  between?: readonly [string, string];
  /** Round trip between a1 and b1 (and between each client and the server, which sits in the core): split over the two WAN links. Default 0. */
  rttMs?: number;
  seed?: number | string;
  /** Which of `between` controls (default the first). */
  controlling?: 'first' | 'second';
  /** UdpCheckSession's timeoutMs (default its own, 10 s). */
  timeoutMs?: number;
}

export interface PunchSide {
  /** What this side offered: "type ip:port", in order. */
  candidates: string[];
  /** The nominated pair, if this side selected one. */
  result?: PunchResult;
  /** Virtual ms from the agreed start to this side's selection. */
  selectedAfterMs?: number;
  error?: string;
}

export interface UdpPunchOutcome {
  /** Both sides selected a pair, and each selected the other's actual address (checked against the NATs). */
  connected: boolean;
  /** The first client of `between` (a1 by default). */
  first: PunchSide;
  second: PunchSide;
  /** Virtual ms from the start until both had selected; null when not connected. */
  nominationMs: number | null;
  /** Wall ms the whole scenario took, setup included. */
  wallMs: number;
}

/** A side's router options with its WAN latency: a quarter of the client-to-client round trip, unless set. */
export function routerOptions(side: NatKind | SimRouterOptions, rttMs: number): SimRouterOptions {
  const options = typeof side === 'string' ? { kind: side } : side;
  return { ...options, wan: { ...options.wan, latencyMs: options.wan?.latencyMs ?? rttMs / 4 } };
}

/** Runs one attempt; never throws for a failed punch (that is an outcome), only for a broken setup. */
export async function runUdpPunch(scenario: UdpPunchScenario): Promise<UdpPunchOutcome> {
  const started = performance.now();
  const rttMs = scenario.rttMs ?? 0;
  const lab = createSimLab({
    a: routerOptions(scenario.a, rttMs),
    ...(scenario.b !== undefined ? { b: routerOptions(scenario.b, rttMs) } : {}),
    seed: scenario.seed ?? 1,
  });
  const [firstName, secondName] = scenario.between ?? ['a1', 'b1'];
  const { clock } = lab;
  const server = await startSimStunServer(lab);
  const [a, b] = await clock.run(Promise.all([openPeer(lab, firstName), openPeer(lab, secondName)]));
  const keyPrng = new Prng(scenario.seed ?? 1).derive('session-key');
  const key = new Uint8Array(32).map(() => keyPrng.int(0, 255));
  const startAt = clock.wallNow() + START_IN_MS;
  const startedAt = clock.now() + START_IN_MS;
  const controlling = scenario.controlling ?? 'first';
  const sides = [[a, b, 'first'], [b, a, 'second']] as const;
  const sessions = sides.map(([self, other, name]) => new UdpCheckSession({
    mux: self.mux, session: 'sim', key, role: name === controlling ? 'controlling' : 'controlled',
    remoteCandidates: other.candidates, startAt, clock, wallClock: clock.wallNow,
    ...(scenario.timeoutMs !== undefined ? { timeoutMs: scenario.timeoutMs } : {}),
  }));
  const outcomes: PunchSide[] = sides.map(([self]) => ({ candidates: self.candidates.map((c) => `${c.type} ${formatAddress(c.address)}`) }));
  await clock.run(Promise.all(sessions.map((s, i) => s.result.then(
    (result) => { outcomes[i]!.result = result; outcomes[i]!.selectedAfterMs = clock.now() - startedAt; },
    (error: Error) => { outcomes[i]!.error = error.message; },
  ))));
  const [sa, sb] = outcomes as [PunchSide, PunchSide];
  const connected = isPeer(lab, sa, secondName, b.socket) && isPeer(lab, sb, firstName, a.socket);
  for (const s of sessions) s.close();
  for (const peer of [a, b]) {
    peer.mux.close();
    peer.socket.close();
  }
  await clock.run(server.close());
  return {
    connected, first: sa, second: sb,
    nominationMs: connected ? Math.max(sa.selectedAfterMs!, sb.selectedAfterMs!) : null,
    wallMs: performance.now() - started,
  };
}

/**
 * Virtual ms from the agreed start until both sides have nominated, for clients behind `a`
 * and `b` (default port-restricted, the commonest home NAT) at `rttMs`; what bench/ reports.
 * Rejects when they do not connect.
 */
export async function timeToNomination(options: { rttMs: number; a?: NatKind; b?: NatKind; seed?: number | string }): Promise<number> {
  const outcome = await runUdpPunch({ a: options.a ?? 'port-restricted', b: options.b ?? 'port-restricted', rttMs: options.rttMs, seed: options.seed ?? 1 });
  if (outcome.nominationMs === null) {
    throw new SimError(`sim: ${options.a ?? 'port-restricted'} × ${options.b ?? 'port-restricted'} did not connect: ${outcome.first.error ?? outcome.second.error ?? 'no selection'}`);
  }
  return outcome.nominationMs;
}

export interface SimPeer {
  socket: Socket;
  mux: UdpMux;
  candidates: Candidate[];
  /** The server-reflexive address STUN reported (none when UDP is blocked). */
  srflx?: TransportAddress;
}

/** A peer's one socket, its srflx from STUN (none when UDP is blocked), and the candidates it would sign. */
export async function openPeer(lab: SimLab, name: string): Promise<SimPeer> {
  const socket = lab.socketFactory(name)('udp4');
  socket.bind(0);
  await once(socket, 'listening');
  const port = socket.address().port;
  const stun = new StunUdpClient(socket, { clock: lab.clock });
  let srflx: TransportAddress | undefined;
  try {
    const response = await stun.request({ family: 4, address: SERVER_ADDRESSES[0], port: STUN_PORT });
    srflx = reflexiveAddress(response.message);
  } catch {
    // No answer: the rendezvous gets no srflx, and the peer offers its host candidates only.
  } finally {
    stun.close();
  }
  const offered = [...lab.hosts[name]!.interfaceAddresses().map((address) => formatAddress({ family: 4, address, port })), ...(srflx ? [formatAddress(srflx)] : [])];
  const candidates = [...new Set(offered)].map((text) => {
    const address = parseEndpoint(text);
    return { type: candidateTypeOf(address), address };
  });
  return { socket, mux: new UdpMux(socket, false), candidates, ...(srflx ? { srflx } : {}) };
}

function parseEndpoint(text: string): TransportAddress {
  const colon = text.lastIndexOf(':');
  return { family: 4, address: text.slice(0, colon), port: Number(text.slice(colon + 1)) };
}

/**
 * Whether `side` selected the other peer for real: the socket itself, or what a NAT on the
 * way up from its host (a carrier's included) maps it to now.
 */
function isPeer(lab: SimLab, side: PunchSide, otherHost: string, otherSocket: Socket): boolean {
  if (side.result === undefined) return false;
  const host = lab.hosts[otherHost]!;
  const port = otherSocket.address().port;
  const known = new Set(host.interfaceAddresses().map((address) => `${address}:${port}`));
  for (let router: Router | undefined = host.parent; router !== undefined; router = router.parent) {
    for (const m of router.nat?.mappings(lab.clock.now()) ?? []) {
      if (m.protocol === 'udp' && known.has(endpointKey(m.internal))) known.add(endpointKey(m.external));
    }
  }
  return known.has(formatAddress(side.result.remote));
}
