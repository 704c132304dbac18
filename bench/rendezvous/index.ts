/**
 * Rendezvous capacity of one node (issue 11): how many registered peers one process holds, what
 * each costs in memory, how many connects it brokers per second and how fast.
 *
 * One RendezvousServer with its default limits runs alone in a child process (server.ts, pinned
 * to core 0); simulated peers (clients.ts: bare WebSockets signing real register, intent and
 * accept messages) run in other processes pinned to core 1, each peer from its own 127.x source
 * address, taken in turn (at most PER_ADDRESS peers per address: within the server's per-address
 * cap, and far from the ~28k ephemeral ports one source IP has). Every child raises its own fd limit
 * (`ulimit -n`, which root may raise to 1048576).
 *
 * Reported:
 * - peers held, and memory per peer: the server's RSS (and V8 heap) after registration minus
 *   before, after two forced GCs, divided by the peers (the process's share of each socket
 *   included; the kernel's socket buffers are not process memory);
 * - connects brokered per second (intent -> `incoming` -> signed accept -> `punch` to both),
 *   with a window of connects in flight per client process, and p50/p99 latency from the
 *   initiator sending `connect` to its `punch`.
 * Targets: 100k peers at <= 5 KiB each; >= 5k brokered connects/s.
 *
 *   node dist/bench/run.js rendezvous [--peers 100000] [--duration-ms 5000] [--warmup-ms 3000]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import type { Benchmark, BenchmarkContext } from '../benchmark.js';
import { BenchError, LOAD_CORE, SERVER_CORE, Server, pinned } from '../support/process.js';

const DEFAULT_PEERS = 10_000;
const PER_ADDRESS = 200;
const CLIENT_PROCESSES = 4;
const REGISTER_WINDOW = 64;
const CONNECT_WINDOW = 128;
const TARGET_BYTES_PER_PEER = 5 * 1024;
const TARGET_CONNECTS_PER_SECOND = 5_000;

/** `command args` under bash with the fd limit raised first (as high as allowed: root gets 1048576). */
function withFdLimit(command: string, args: string[]): [string, string[]] {
  const script = 'ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"';
  return ['bash', ['-c', script, 'bash', command, ...args]];
}

function start(name: string, core: number, script: string, args: string[], node: string[] = []): Server {
  const [command, argv] = pinned(core, ...withFdLimit(process.execPath, [...node, script, ...args]));
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  child.on('error', () => undefined);
  return new Server(name, child);
}

/** Sends `message` and resolves with the child's next IPC message of `type` (or fails when it exits). */
async function ask<T>(server: Server, message: Record<string, unknown>, type: string, timeoutMs: number): Promise<T> {
  const child = server.child;
  const answer = new Promise<T>((resolve) => {
    const listener = (reply: { type: string }): void => {
      if (reply.type !== type) return;
      child.off('message', listener);
      resolve(reply as T);
    };
    child.on('message', listener);
  });
  child.send(message);
  const signal = AbortSignal.timeout(timeoutMs);
  const exited = once(child, 'exit', { signal }).then(() => { throw new BenchError(`${server.name}: exited while asked for ${type}; output:\n${server.output}`); });
  try {
    return await Promise.race([answer, exited]);
  } catch (error) {
    if (signal.aborted) throw new BenchError(`${server.name}: no ${type} within ${timeoutMs} ms; output:\n${server.output}`, { cause: error });
    throw error;
  }
}

interface Memory { rss: number; heapUsed: number; external: number; arrayBuffers: number; stats: { peers: number; connections: number } }

function quantile(sorted: readonly number[], q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** 127.1.0.1, 127.1.0.2, ...: source addresses on loopback (all of 127.0.0.0/8 is local). */
function addresses(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`);
}

async function run(bench: BenchmarkContext): Promise<Record<string, unknown>> {
  const peersWanted = bench.options.peers ?? DEFAULT_PEERS;
  const dist = join(bench.root, 'dist', 'bench', 'rendezvous');
  const loadBefore = loadavg()[0]!;
  const server = start('rendezvous server', SERVER_CORE, join(dist, 'server.js'), [], ['--expose-gc']);
  const clients: Server[] = [];
  const stopAll = async (): Promise<void> => { await Promise.all([...clients, server].map((s) => s.stop())); };
  bench.signal.addEventListener('abort', () => void stopAll(), { once: true });
  try {
    const url = (await server.lineMatching(/^ready /, 20_000)).slice('ready '.length).trim();
    const before = await ask<Memory>(server, { type: 'memory' }, 'memory', 30_000);
    const sources = addresses(Math.ceil(peersWanted / PER_ADDRESS));
    const perProcess = Math.ceil(peersWanted / CLIENT_PROCESSES);
    for (let p = 0; p < CLIENT_PROCESSES; p++) {
      const first = p * perProcess;
      const count = Math.min(perProcess, peersWanted - first);
      if (count <= 0) break;
      const config = { url, first, count, addresses: sources, perAddress: PER_ADDRESS, window: REGISTER_WINDOW };
      clients.push(start(`clients ${p}`, LOAD_CORE, join(dist, 'clients.js'), [JSON.stringify(config)]));
    }
    bench.log(`registering ${peersWanted} peers from ${sources.length} source addresses in ${clients.length} processes`);
    const registrations = await Promise.all(clients.map((c) => ask<{ peers: number; failed: number; ms: number }>(c, { type: 'register' }, 'registered', 600_000)));
    const held = registrations.reduce((sum, r) => sum + r.peers, 0);
    const registerMs = Math.max(...registrations.map((r) => r.ms));
    const after = await ask<Memory>(server, { type: 'memory' }, 'memory', 60_000);
    if (process.env['NATPUNCH_BENCH_SNAPSHOT']) bench.log(`heap snapshot: ${(await ask<{ file: string }>(server, { type: 'snapshot' }, 'snapshot', 300_000)).file}`);
    const perPeer = { rss: (after.rss - before.rss) / held, heap: (after.heapUsed - before.heapUsed) / held, external: (after.external - before.external) / held };
    bench.log(`${held} peers registered in ${(registerMs / 1000).toFixed(1)} s (${registrations.reduce((s, r) => s + r.failed, 0)} failed); server ${after.stats.peers} peers, RSS ${(before.rss / 2 ** 20).toFixed(0)} -> ${(after.rss / 2 ** 20).toFixed(0)} MiB, heap ${(before.heapUsed / 2 ** 20).toFixed(0)} -> ${(after.heapUsed / 2 ** 20).toFixed(0)} MiB`);

    // Brokering, with the default connect window for each client process.
    const { warmupMs, durationMs } = bench.options;
    bench.log(`brokering connects for ${(warmupMs + durationMs) / 1000} s (${warmupMs / 1000} s warm-up)`);
    const brokered = await Promise.all(clients.map((c) => {
      c.child.send({ type: 'window', window: CONNECT_WINDOW });
      return ask<{ completed: number; latencies: number[]; errors: Record<string, number>; measuredMs: number }>(c, { type: 'broker', warmupMs, durationMs }, 'brokered', warmupMs + durationMs + 60_000);
    }));
    const completed = brokered.reduce((s, b) => s + b.completed, 0);
    const measuredMs = Math.max(...brokered.map((b) => b.measuredMs));
    const latencies = brokered.flatMap((b) => b.latencies).sort((a, b) => a - b);
    const errors: Record<string, number> = {};
    for (const b of brokered) for (const [code, n] of Object.entries(b.errors)) errors[code] = (errors[code] ?? 0) + n;
    const perSecond = completed / (measuredMs / 1000);
    const loadAfter = loadavg()[0]!;

    const kib = (bytes: number): string => (bytes / 1024).toFixed(2);
    process.stdout.write(`\nRendezvous capacity of one node (default limits; server on core ${SERVER_CORE}, ${clients.length} client processes on core ${LOAD_CORE}):\n`);
    process.stdout.write(`peers held                 ${held} of ${peersWanted} (registered in ${(registerMs / 1000).toFixed(1)} s)\n`);
    process.stdout.write(`memory per peer, RSS       ${kib(perPeer.rss)} KiB  (target <= ${TARGET_BYTES_PER_PEER / 1024} KiB ${perPeer.rss <= TARGET_BYTES_PER_PEER ? '✓' : '✗'}); V8 heap ${kib(perPeer.heap)} KiB, external ${kib(perPeer.external)} KiB\n`);
    process.stdout.write(`server RSS                 ${(before.rss / 2 ** 20).toFixed(0)} MiB idle -> ${(after.rss / 2 ** 20).toFixed(0)} MiB with the peers\n`);
    process.stdout.write(`connects brokered/s        ${perSecond.toFixed(0)}  (target >= ${TARGET_CONNECTS_PER_SECOND} ${perSecond >= TARGET_CONNECTS_PER_SECOND ? '✓' : '✗'}; ${completed} in ${(measuredMs / 1000).toFixed(1)} s)\n`);
    process.stdout.write(`brokering latency          p50 ${quantile(latencies, 0.5).toFixed(1)} ms, p99 ${quantile(latencies, 0.99).toFixed(1)} ms\n`);
    if (Object.keys(errors).length) process.stdout.write(`refused connects           ${JSON.stringify(errors)}\n`);
    if (Math.max(loadBefore, loadAfter) > 0.5) process.stdout.write(`note: 1-minute load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after (on ${cpus().length} CPUs)\n`);
    return {
      benchmark: 'rendezvous', date: new Date().toISOString(), machine: { cpus: cpus().length, loadAverage: { before: loadBefore, after: loadAfter } },
      peersWanted, peersHeld: held, registerMs, bytesPerPeer: perPeer, serverRss: { before: before.rss, after: after.rss },
      connectsPerSecond: perSecond, connectsCompleted: completed, latencyMs: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) }, errors,
      targets: { bytesPerPeer: TARGET_BYTES_PER_PEER, connectsPerSecond: TARGET_CONNECTS_PER_SECOND },
    };
  } finally {
    await stopAll();
  }
}

export const benchmark: Benchmark = {
  name: 'rendezvous',
  description: 'one rendezvous node: peers held, memory per peer (RSS delta / peers), connects brokered per second and p99 latency; targets 100k peers at <= 5 KiB each, >= 5k connects/s',
  run,
};
