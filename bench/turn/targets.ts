/**
 * The relays bench/turn compares, each started on 127.0.0.1 pinned to core 0: the C forwarder
 * ceiling, coturn, and `natpunch serve`. Each target also sets up the relay paths the load runs
 * over: for the TURN servers, allocations made with natpunch's own TURN client, a channel bound
 * on each to the sink; for the forwarder, the relayed ports it printed.
 */

import dgram from 'node:dgram';
import { once } from 'node:events';
import { join } from 'node:path';
import { TurnClient, udpTransport, type TurnTransport } from '../../src/turn/index.js';
import type { TransportAddress } from '../../src/wire/index.js';
import { BenchError, LOOPBACK, SERVER_CORE, Server, delay, freePort, startPinned, stopOnFailure } from '../support/process.js';

/**
 * Where the sink (the TURN peer) listens. Not 127.0.0.1: natpunch never relays to its own
 * addresses, whatever --relay-allow says (src/turn/peer-policy.ts), so a ChannelBind to a peer on
 * 127.0.0.1 gets 403. Every target uses the same peer address.
 */
export const PEER_ADDRESS = '127.0.0.2';
export const TURN_USER = 'bench';
export const TURN_PASSWORD = 'bench-password';

/** One relay path: the load binds `clientPort` again and sends on `channel`; the server relays from `relayed`. */
export interface Flow {
  clientPort: number;
  channel: number;
  relayed: TransportAddress;
}

export interface TargetContext {
  /** Directory of the compiled C programs and other temporary files of this run. */
  workDir: string;
  root: string;
  signal: AbortSignal;
  /** Extra `node` flags for natpunch (e.g. --cpu-prof). */
  nodeFlags?: string[];
}

export interface RelayTarget {
  name: 'forward' | 'coturn' | 'natpunch';
  description: string;
  /**
   * Starts it listening on 127.0.0.1:`port` and makes one relay path from each of `clientPorts`
   * (free on 127.0.0.1, not bound) to `peer`. Nothing is bound on the client ports when it resolves.
   */
  start(port: number, clientPorts: number[], peer: TransportAddress, context: TargetContext): Promise<{ server: Server; flows: Flow[] }>;
}

const READY_MS = 20_000;

/**
 * A UDP TURN transport over a socket this module owns, which it can hand over: `handOver()` tells
 * the client the transport has ended (so it stops its refresh timers and sends nothing more, in
 * particular not the Refresh with LIFETIME 0 that `close()` sends and that would delete the
 * allocation) and closes the socket, leaving the allocation on the server for the load to use
 * from the same local port.
 */
async function handOverTransport(server: TransportAddress, localPort: number): Promise<{ transport: TurnTransport; handOver(): Promise<void> }> {
  const socket = dgram.createSocket('udp4');
  socket.bind(localPort, LOOPBACK);
  await once(socket, 'listening');
  socket.on('error', () => undefined); // per-datagram errors (ICMP unreachable while the server starts)
  const inner = udpTransport(socket, server);
  socket.on('message', (bytes, from) => inner.feed(bytes, from));
  let ended: ((error: Error) => void) | undefined;
  return {
    transport: { ...inner, onClose: (handler) => { ended = handler; } },
    async handOver() {
      ended?.(new BenchError('bench/turn: socket handed over to the load generator'));
      inner.close();
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}

/**
 * One allocation from 127.0.0.1:`clientPort` with a channel bound to `peer` (ChannelBind also
 * installs the permission, RFC 8656 §12). Retried until READY_MS: the server may still be
 * opening its sockets, and the answer to a first Allocate is what says it is ready.
 */
async function allocateFlow(target: Server, port: number, clientPort: number, peer: TransportAddress, signal: AbortSignal): Promise<Flow> {
  const serverAddress: TransportAddress = { family: 4, address: LOOPBACK, port };
  const deadline = Date.now() + READY_MS;
  let last: unknown;
  while (Date.now() < deadline && !signal.aborted && target.running) {
    const { transport, handOver } = await handOverTransport(serverAddress, clientPort);
    const client = new TurnClient(transport, { retransmission: { rto: 100, rc: 4, rm: 4 } });
    try {
      const allocation = await client.allocate({ username: TURN_USER, password: TURN_PASSWORD, signal });
      const channel = await client.bindChannel(peer, { signal });
      return { clientPort, channel, relayed: allocation.relayed };
    } catch (error) {
      last = error;
    } finally {
      await handOver();
    }
    // A failed attempt may have left an allocation on this 5-tuple (437 on the next Allocate): a new port.
    clientPort = await freePort();
    await delay(100, signal);
  }
  throw new BenchError(`${target.name}: no allocation with a channel to ${peer.address}:${peer.port} on ${LOOPBACK}:${port} within ${READY_MS} ms ` +
    `(${(last as Error | undefined)?.message ?? 'exited or aborted'}); output:\n${target.output}`);
}

/** Starts a TURN server (`launch`), then allocates every flow; stops the server if any step fails. */
async function startTurn(launch: () => Promise<Server> | Server, port: number, clientPorts: number[], peer: TransportAddress, signal: AbortSignal, line?: RegExp): Promise<{ server: Server; flows: Flow[] }> {
  const server = await launch();
  return stopOnFailure(server, async () => {
    if (line) await server.lineMatching(line, READY_MS);
    const flows: Flow[] = [];
    for (const clientPort of clientPorts) flows.push(await allocateFlow(server, port, clientPort, peer, signal));
    return { server, flows };
  });
}

export const forward: RelayTarget = {
  name: 'forward',
  description: 'bench/turn/forward.c: recvfrom + sendto per datagram, TURN data plane only, the one-core ceiling',
  start: async (port, clientPorts, peer, { workDir }) => {
    const server = startPinned('forward', SERVER_CORE, join(workDir, 'forward'), [String(port), `${peer.address}:${peer.port}`, ...clientPorts.map(String)]);
    return stopOnFailure(server, async () => {
      const ready = await server.lineMatching(/^ready \d+( \d+)+$/, READY_MS);
      const relayedPorts = ready.split(' ').slice(2).map(Number);
      // forward.c sends client k's traffic on channel 0x4000 + k.
      const flows = clientPorts.map((clientPort, k) => ({ clientPort, channel: 0x4000 + k, relayed: { family: 4 as const, address: LOOPBACK, port: relayedPorts[k]! } }));
      return { server, flows };
    });
  },
};

/**
 * coturn single-threaded (`--relay-threads=0`: listener and relay in one thread; the auth and
 * admin threads are idle under load). On one pinned core more relay threads only share the core
 * and add wake-ups; bench/README.md gives the measurement behind this choice.
 */
export const COTURN_THREADS = ['--relay-threads=0'];

export const coturn: RelayTarget = {
  name: 'coturn',
  description: `coturn turnserver ${COTURN_THREADS.join(' ')}, long-term credentials, loopback peers allowed, no TLS/DTLS/CLI`,
  start: (port, clientPorts, peer, { workDir, signal }) => startTurn(() => startPinned('coturn', SERVER_CORE, 'turnserver', [
    '-n', '--no-cli', '--no-tls', '--no-dtls', `--listening-ip=${LOOPBACK}`, `--relay-ip=${LOOPBACK}`, `--listening-port=${port}`,
    '--allow-loopback-peers', '--realm=natpunch.bench', '--lt-cred-mech', `--user=${TURN_USER}:${TURN_PASSWORD}`, ...COTURN_THREADS,
    '--log-file=stdout', '--simple-log', '--pidfile', join(workDir, 'turnserver.pid'), '--db', join(workDir, 'turndb'),
  ]), port, clientPorts, peer, signal),
};

export const natpunch: RelayTarget = {
  name: 'natpunch',
  description: 'natpunch serve --turn-user, --relay-allow 127.0.0.0/8 (built-in relay on the STUN port, relaying from 127.0.0.1)',
  start: async (port, clientPorts, peer, { root, signal, nodeFlags = [] }) => {
    const cli = join(root, 'dist', 'src', 'cli', 'main.js');
    const http = String(await freePort());
    return startTurn(() => startPinned('natpunch', SERVER_CORE, process.execPath, [
      ...nodeFlags, cli, 'serve', '--address', LOOPBACK, '--port', String(port), '--http-port', http,
      '--turn-user', `${TURN_USER}:${TURN_PASSWORD}`, '--relay-allow', '127.0.0.0/8',
    ]), port, clientPorts, peer, signal, /\bready\b/);
  },
};

export const targets: RelayTarget[] = [forward, coturn, natpunch];
