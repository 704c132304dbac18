/**
 * bench/connect, part 0 (no root): time from `connect()` to a direct path in the in-process
 * network (src/sim, docs/sim.md), on virtual time, at a given RTT, as a ratio to what the
 * network itself takes: the signalling round trip plus the peer round trip (issue 7's target:
 * at most 1.5 times that).
 *
 * Topology: the sim lab's a1 and b1, each behind its NAT, with rttMs between them (rttMs/4 each
 * way on each WAN link) and the rendezvous server in the core, so each peer's RTT to it is
 * rttMs/2. The signalling is modelled leg by leg on the virtual clock, as src/rendezvous runs it
 * (connect → intent to the server → incoming to b1 → accept to the server → a punch to each),
 * with the server's own start delays (startDelays, from those RTTs). Signalling RTT = a1's RTT
 * to the server + b1's (the four legs) = rttMs; peer RTT = rttMs. From the punches on, the real
 * code runs on sim sockets: the UDP checks (UdpCheckSession) and then the Noise XX handshake as
 * datagrams on the nominated pair (PathHandshake over a UdpEndpoint path), as src/peer does.
 * Nothing costs CPU time here (signatures, the handshake's crypto): the lab part measures that.
 *
 * Two pairs: port-restricted × port-restricted (both punch: the commonest home NATs), and
 * port-restricted × full cone as the lab part connects it (b1 is reachable, so it only answers
 * a1's checks: udp-reversal).
 */
import { generateIdentity } from '../../src/identity/index.js';
import type { NatKind } from '../../src/lab/nat-kind.js';
import { PathHandshake } from '../../src/path/handshake.js';
import { UdpEndpoint } from '../../src/path/udp-endpoint.js';
import { UdpCheckSession } from '../../src/punch/udp-checks.js';
import { startDelays } from '../../src/rendezvous/punch-timing.js';
import { createSimLab, startSimStunServer } from '../../src/sim/topology.js';
import { openPeer } from '../../src/sim/punch-scenario.js';
import { BenchError } from '../support/process.js';

/** Issue 7: time to direct at most this many times (signalling RTT + peer RTT). */
export const TARGET_RATIO = 1.5;

export interface SimConnectResult {
  pair: string;
  technique: 'udp-hole-punch' | 'udp-reversal';
  rttMs: number;
  /** a1's RTT to the server + b1's: the four signalling legs. */
  signallingRttMs: number;
  peerRttMs: number;
  /** connect() → both sides have selected the nominated pair. */
  nominationMs: number;
  /** connect() → the connecting side's handshake is complete (its Connection would resolve). */
  connectMs: number;
  /** connect() → the other side's handshake is complete. */
  acceptMs: number;
  nominationRatio: number;
  connectRatio: number;
}

/** One connect a1 → b1 on virtual time. */
export async function simConnect(options: { a: NatKind; b: NatKind; rttMs: number; reversal?: boolean; seed?: string }): Promise<SimConnectResult> {
  const { rttMs } = options;
  const leg = rttMs / 4;
  const lab = createSimLab({ a: { kind: options.a, wan: { latencyMs: leg } }, b: { kind: options.b, wan: { latencyMs: leg } }, seed: options.seed ?? 'bench' });
  const { clock } = lab;
  const server = await startSimStunServer(lab);
  const [a, b] = await clock.run(Promise.all([openPeer(lab, 'a1'), openPeer(lab, 'b1')]));
  const serverRtt = 2 * leg;
  const key = new Uint8Array(32).fill(7);
  const session = 'bench-sim';
  const wait = (ms: number): Promise<void> => new Promise((resolve) => clock.setTimeout(resolve, ms));
  const identities = [generateIdentity(), generateIdentity()] as const;
  const started = clock.now();
  const at = { nomination: [0, 0], handshake: [0, 0] };

  const side = async (index: 0 | 1, punchAfterMs: number, startInMs: number): Promise<void> => {
    const [self, other] = index === 0 ? [a, b] : [b, a];
    const controlling = index === 0;
    await wait(punchAfterMs);
    const udp = new UdpEndpoint(self.mux, session);
    const handshake = new PathHandshake({
      identity: identities[index], initiator: controlling, expectedPeerId: controlling ? identities[1].peerId : undefined,
      context: new TextEncoder().encode(session), clock,
    });
    const checks = new UdpCheckSession({
      mux: self.mux, session, key, role: controlling ? 'controlling' : 'controlled', clock, wallClock: clock.wallNow,
      startAt: clock.wallNow() + startInMs,
      // Reversal: the reachable side sends no checks of its own, only answers (src/peer/path-choice.ts).
      remoteCandidates: options.reversal && !controlling ? [] : other.candidates,
      // As src/peer/establish.ts does for a UDP-only connect: message 0 leaves with the nomination.
      onNominating: (remote) => handshake.offer(udp.pathTo(remote, 'udp-hole-punch')),
    });
    try {
      const punched = await checks.result;
      at.nomination[index] = clock.now() - started;
      handshake.offer(udp.pathTo(punched.remote, 'udp-hole-punch'));
      await handshake.result;
      at.handshake[index] = clock.now() - started;
    } finally {
      handshake.close();
      checks.close();
      udp.close();
    }
  };
  // connect → intent at the server (a1's leg) → incoming at b1 → accept at the server: then both punches leave.
  const punchesLeave = 3 * leg;
  const [delayA, delayB] = startDelays(serverRtt, serverRtt);
  await clock.run(Promise.all([side(0, punchesLeave + leg, delayA), side(1, punchesLeave + leg, delayB)])).catch((error: Error) => {
    throw new BenchError(`bench/connect sim: ${options.a} × ${options.b} at ${rttMs} ms RTT did not connect: ${error.message}`, { cause: error });
  });
  for (const peer of [a, b]) {
    peer.mux.close();
    peer.socket.close();
  }
  await clock.run(server.close());
  const signallingRttMs = 2 * serverRtt;
  const base = signallingRttMs + rttMs;
  const nominationMs = Math.max(...at.nomination);
  return {
    pair: `${options.a} × ${options.b}`, technique: options.reversal ? 'udp-reversal' : 'udp-hole-punch', rttMs, signallingRttMs, peerRttMs: rttMs,
    nominationMs, connectMs: at.handshake[0], acceptMs: at.handshake[1],
    nominationRatio: Number((nominationMs / base).toFixed(3)), connectRatio: Number((at.handshake[0] / base).toFixed(3)),
  };
}

/** The figures bench/connect reports: both pairs at 50 and 200 ms RTT. */
export async function simConnects(): Promise<SimConnectResult[]> {
  const results: SimConnectResult[] = [];
  for (const rttMs of [50, 200]) {
    results.push(await simConnect({ a: 'port-restricted', b: 'port-restricted', rttMs }));
    results.push(await simConnect({ a: 'port-restricted', b: 'full-cone', rttMs, reversal: true }));
  }
  return results;
}
