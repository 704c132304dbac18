/**
 * The STUN servers bench/stun compares, each started on loopback pinned to core 0: the C echo
 * ceiling, the node:dgram echo ceiling, coturn, and `natpunch serve`. A target is ready when it has said so (where it has a
 * ready line) and has answered one real Binding transaction from natpunch's own client.
 */

import dgram from 'node:dgram';
import { once } from 'node:events';
import { join } from 'node:path';
import { StunUdpClient } from '../../src/stun/udp-client.js';
import { reflexiveAddress, formatAddress } from '../../src/wire/index.js';
import { BenchError, LOOPBACK, SERVER_CORE, Server, delay, freePort, startPinned, stopOnFailure } from '../support/process.js';

export { LOAD_CORE, LOOPBACK, SERVER_CORE } from '../support/process.js';

export interface Target {
  name: 'echo' | 'node-echo' | 'coturn' | 'natpunch';
  /** What it is, for the table's notes. */
  description: string;
  /** Starts it on `port` and resolves once it answers Binding requests there. */
  start(port: number, context: TargetContext): Promise<Server>;
}

export interface TargetContext {
  /** Directory of the compiled C references and other temporary files of this run. */
  workDir: string;
  root: string;
  signal: AbortSignal;
  /** Extra `node` flags for natpunch (e.g. --cpu-prof). */
  nodeFlags?: string[];
}

const READY_MS = 20_000;

/**
 * One Binding transaction to `port` with natpunch's client; with `reflexive`, the response must
 * also carry the socket's own address as XOR-MAPPED-ADDRESS (a real STUN answer, not an echo).
 * Retried until `deadline`: a server may open its socket a little after its ready line.
 */
export async function probe(server: Server, port: number, reflexive: boolean, signal: AbortSignal): Promise<void> {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, LOOPBACK);
  await once(socket, 'listening');
  const client = new StunUdpClient(socket, { retransmission: { rto: 100, rc: 4, rm: 4 } });
  const deadline = Date.now() + READY_MS;
  let last: unknown;
  try {
    while (Date.now() < deadline && !signal.aborted && server.running) {
      try {
        const { message } = await client.request({ family: 4, address: LOOPBACK, port }, { signal });
        if (!reflexive) return;
        const mapped = reflexiveAddress(message);
        const self = { family: 4 as const, address: LOOPBACK, port: socket.address().port };
        if (mapped && formatAddress(mapped) === formatAddress(self)) return;
        throw new BenchError(`${server.name}: Binding response maps ${mapped ? formatAddress(mapped) : 'nothing'}, expected ${formatAddress(self)}`);
      } catch (error) {
        if (error instanceof BenchError) throw error;
        last = error;
        await delay(100, signal);
      }
    }
    throw new BenchError(`${server.name}: no Binding response on ${LOOPBACK}:${port} within ${READY_MS} ms (${(last as Error)?.message ?? 'exited'}); output:\n${server.output}`);
  } finally {
    client.close();
    socket.close();
  }
}

function ready(server: Server, port: number, reflexive: boolean, signal: AbortSignal, line?: RegExp): Promise<Server> {
  return stopOnFailure(server, async () => {
    if (line) await server.lineMatching(line, READY_MS);
    await probe(server, port, reflexive, signal);
    return server;
  });
}

export const echo: Target = {
  name: 'echo',
  description: 'bench/stun/echo.c: recvfrom + sendto per datagram, the one-core ceiling',
  start: (port, { workDir, signal }) =>
    ready(startPinned('echo', SERVER_CORE, join(workDir, 'echo'), [String(port)]), port, false, signal, /^ready \d+/),
};

export const nodeEcho: Target = {
  name: 'node-echo',
  description: 'bench/stun/node-echo.ts: one node:dgram message event + send per datagram, the ceiling of any server on node:dgram',
  start: (port, { root, signal }) => ready(startPinned('node-echo', SERVER_CORE, process.execPath, [
    join(root, 'dist', 'bench', 'stun', 'node-echo.js'), String(port),
  ]), port, false, signal, /^ready \d+/),
};

export const coturn: Target = {
  name: 'coturn',
  description: 'coturn turnserver, default threads, UDP+TCP listeners, no TLS/DTLS/CLI',
  start: (port, { workDir, signal }) => ready(startPinned('coturn', SERVER_CORE, 'turnserver', [
    '-n', '--no-cli', '--no-tls', '--no-dtls', '-L', LOOPBACK, '--listening-port', String(port),
    '--pidfile', join(workDir, 'turnserver.pid'), '--log-file', 'stdout', '--simple-log',
  ]), port, true, signal),
};

export const natpunch: Target = {
  name: 'natpunch',
  description: 'natpunch serve --no-relay (StunServer, UDP+TCP listeners)',
  start: async (port, { root, signal, nodeFlags = [] }) => {
    const cli = join(root, 'dist', 'src', 'cli', 'main.js');
    // A port of its own for the HTTP listener too, should serve open one: nothing else may answer here.
    const http = String(await freePort());
    const args = [...nodeFlags, cli, 'serve', '--address', LOOPBACK, '--port', String(port), '--http-port', http, '--no-relay', '--stun-rate-limit', '0']; // the load comes from one address
    return ready(startPinned('natpunch', SERVER_CORE, process.execPath, args), port, true, signal, /\bready\b/);
  },
};

export const targets: Target[] = [echo, nodeEcho, coturn, natpunch];
