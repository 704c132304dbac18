/**
 * bench/turn: relayed throughput of `natpunch serve` beside coturn 4.6.1 and a C forwarder
 * ceiling, each pinned to core 0, under the same closed-loop load from bench/turn/load.c on
 * core 1: 1200-byte payloads as ChannelData, client -> peer ("out") and peer -> client ("in"),
 * over the same allocations (one server start per target and round, both directions measured).
 * Reports delivered packets/s and MiB/s at the receiving end, loss, the server's CPU and packets
 * per server CPU-second, and the ratios natpunch / coturn of the same run.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, cpus, release, loadavg } from 'node:os';
import { join } from 'node:path';
import type { Benchmark, BenchmarkContext } from '../benchmark.js';
import { BenchError, LOAD_CORE, compileC, freePort, pinned, runToEnd } from '../support/process.js';
import { formatCount, formatRatio, formatTable } from '../support/table.js';
import { collectProfile, cpuProfileFlags, printProfile, profileRecord } from '../support/cpu-profile.js';
import { PEER_ADDRESS, natpunch, targets, type RelayTarget, type TargetContext } from './targets.js';

/** Eight allocations (eight 5-tuples, eight relayed sockets), as a server sees several clients. */
const FLOWS = 8;
/**
 * Datagrams in flight per flow. The smallest socket buffer on any path is coturn's: 128 KiB on
 * its relayed and per-client sockets, ~56 datagrams of 1200 bytes (2304 bytes of truesize each on
 * loopback). A larger window overflows it whenever coturn falls behind, and the lost tail of a
 * window then stalls the flow for the load's timeout: the figure would measure the window, not
 * the relay. 8 x 32 keeps 256 datagrams in flight, each socket's queue within every buffer.
 */
const WINDOW = 32;
const PAYLOAD = 1200;
const DIRECTIONS = ['out', 'in'] as const;
type Direction = (typeof DIRECTIONS)[number];

/** What bench/turn/load.c prints (one JSON object). */
export interface LoadResult {
  direction: Direction;
  delivered: number;
  seconds: number;
  rate: number;
  mibPerSecond: number;
  sent: number;
  lost: number;
  lossPercent: number;
  invalid: number;
  reordered: number;
  late: number;
  stalls: number;
  sendErrors: number;
  flows: number;
  window: number;
  size: number;
  loadCpu: number;
  serverUser: number;
  serverSys: number;
  core0Busy: number;
  core1Busy: number;
}

/** Starts `target`, makes its flows, runs the load once per direction in `directions`, stops it. */
async function measure(target: RelayTarget, context: TargetContext, bench: BenchmarkContext, directions: readonly Direction[] = DIRECTIONS): Promise<Record<Direction, LoadResult>> {
  const port = await freePort();
  const clientPorts: number[] = [];
  for (let k = 0; k < FLOWS; k++) clientPorts.push(await freePort());
  const sinkPort = await freePort(PEER_ADDRESS);
  const { server, flows } = await target.start(port, clientPorts, { family: 4, address: PEER_ADDRESS, port: sinkPort }, context);
  try {
    const { warmupMs, durationMs } = bench.options;
    const results: Partial<Record<Direction, LoadResult>> = {};
    for (const direction of directions) {
      if (bench.signal.aborted) throw new BenchError('bench/turn: aborted');
      const { stdout } = await runToEnd(...pinned(LOAD_CORE, join(context.workDir, 'load'), [
        '--direction', direction, '--server', `127.0.0.1:${port}`, '--peer', `${PEER_ADDRESS}:${sinkPort}`,
        ...flows.flatMap((f) => ['--flow', `${f.clientPort},${f.channel},${f.relayed.address},${f.relayed.port}`]),
        '--size', String(PAYLOAD), '--window', String(WINDOW),
        '--warmup-ms', String(warmupMs), '--duration-ms', String(durationMs), '--server-pid', String(server.pid),
      ]), { timeoutMs: warmupMs + durationMs + 30_000, signal: bench.signal });
      if (!server.running) throw new BenchError(`${target.name}: exited during the load; output:\n${server.output}`);
      const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as LoadResult;
      if (result.delivered === 0) {
        throw new BenchError(`${target.name} ${direction}: nothing relayed (sent ${result.sent}, invalid ${result.invalid}); output:\n${server.output}`);
      }
      results[direction] = result;
    }
    return results as Record<Direction, LoadResult>;
  } finally {
    await server.stop();
  }
}

const cpuOf = (r: LoadResult): number => r.serverUser + r.serverSys;

async function run(bench: BenchmarkContext): Promise<Record<string, unknown>> {
  const workDir = await mkdtemp(join(tmpdir(), 'natpunch-bench-turn-'));
  try {
    await Promise.all(['load', 'forward'].map((name) =>
      compileC(join(bench.root, 'bench', 'turn', `${name}.c`), join(workDir, name), bench.signal)));
    const context: TargetContext = { workDir, root: bench.root, signal: bench.signal };
    const loadBefore = loadavg()[0]!;
    const rounds: Record<string, Record<Direction, LoadResult>>[] = [];
    for (let round = 1; round <= bench.options.rounds && !bench.signal.aborted; round++) {
      const results: Record<string, Record<Direction, LoadResult>> = {};
      for (const target of targets) {
        if (bench.signal.aborted) break;
        bench.log(`round ${round}/${bench.options.rounds}: ${target.name} (per direction ${bench.options.warmupMs} ms warm-up + ${bench.options.durationMs} ms)`);
        results[target.name] = await measure(target, context, bench);
        bench.log(`${target.name}: ${DIRECTIONS.map((d) => `${d} ${formatCount(results[target.name]![d].rate)} pkt/s`).join(', ')}`);
      }
      rounds.push(results);
    }
    if (bench.signal.aborted) throw new BenchError('bench/turn: aborted');
    const loadAfter = loadavg()[0]!;

    // The best round of each target and direction: other load on the machine only ever makes a round slower.
    const best: Record<string, Partial<Record<Direction, LoadResult>>> = {};
    for (const results of rounds) {
      for (const [name, byDirection] of Object.entries(results)) {
        for (const direction of DIRECTIONS) {
          const r = byDirection[direction];
          const slot = (best[name] ??= {});
          if (!slot[direction] || r.rate > slot[direction]!.rate) slot[direction] = r;
        }
      }
    }
    const rate = (name: string, d: Direction): number | undefined => best[name]?.[d]?.rate;
    const perCpu = (name: string, d: Direction): number | undefined => {
      const r = best[name]?.[d];
      return r && cpuOf(r) > 0 ? r.rate / cpuOf(r) : undefined;
    };
    const rows = DIRECTIONS.flatMap((d) => targets.map(({ name }) => {
      const r = best[name]![d]!;
      return [`${name} ${d}`, formatCount(r.rate), r.mibPerSecond.toFixed(1), formatRatio(r.rate, rate('coturn', d)), formatRatio(r.rate, rate('forward', d)),
        r.lossPercent.toFixed(2), `${cpuOf(r).toFixed(2)} (${r.serverUser.toFixed(2)}+${r.serverSys.toFixed(2)})`, formatCount(perCpu(name, d) ?? 0),
        formatRatio(perCpu(name, d), perCpu('coturn', d)), r.core0Busy.toFixed(2), r.loadCpu.toFixed(2), r.core1Busy.toFixed(2), `${r.invalid}/${r.reordered}/${r.late}`];
    }));
    process.stdout.write(`\nTURN relay, ${PAYLOAD}-byte payloads as ChannelData, ${FLOWS} allocations x ${WINDOW} in flight, out = client -> peer, ` +
      `in = peer -> client; ${bench.options.durationMs} ms measured after ${bench.options.warmupMs} ms warm-up per direction, ` +
      `best of ${rounds.length} round(s); server on core 0, load on core ${LOAD_CORE}; load average ${loadBefore.toFixed(2)} -> ${loadAfter.toFixed(2)}\n`);
    process.stdout.write(formatTable(
      ['relay', 'pkt/s', 'MiB/s', 'vs coturn', 'vs forward', 'loss %', 'server CPU (usr+sys)', 'pkt/CPU-s', 'per CPU vs coturn', 'core 0 busy', 'load CPU', 'core 1 busy', 'invalid/reord/late'], rows) + '\n');

    const ratio = (x: number | undefined, y: number | undefined): number | null => (x !== undefined && y !== undefined && y > 0 ? Number((x / y).toFixed(3)) : null);
    const ratios = Object.fromEntries(DIRECTIONS.map((d) => [d, {
      natpunchVsCoturn: ratio(rate('natpunch', d), rate('coturn', d)),
      natpunchVsCoturnPerCpu: ratio(perCpu('natpunch', d), perCpu('coturn', d)),
      natpunchVsForward: ratio(rate('natpunch', d), rate('forward', d)),
      coturnVsForward: ratio(rate('coturn', d), rate('forward', d)),
    }]));
    for (const d of DIRECTIONS) {
      process.stdout.write(`natpunch / coturn ${d} = ${ratios[d]!.natpunchVsCoturn ?? '-'} in pkt/s (target >= 1.0); ${ratios[d]!.natpunchVsCoturnPerCpu ?? '-'} per server CPU-second\n`);
    }
    for (const { name } of targets) {
      for (const d of DIRECTIONS) {
        const r = best[name]![d]!;
        // The forwarder run shows what the load can drive; elsewhere a busy load core means the figure may be the load's, not the
        // server's. The core's busy share, not the load's CPU: the delivery of its sends into the server's sockets runs there too.
        if (name !== 'forward' && r.core1Busy > 0.95) {
          process.stdout.write(`warning: core ${LOAD_CORE} was ${r.core1Busy.toFixed(2)} busy (the load itself ${r.loadCpu.toFixed(2)}) against ${name} ${d}: the load may be the limit there\n`);
        }
        if (r.lossPercent > 1) process.stdout.write(`note: ${name} ${d} lost ${r.lossPercent.toFixed(2)} % of what was sent (${r.stalls} window restarts)\n`);
        if (r.invalid > 0 || r.reordered > 0) process.stdout.write(`note: ${name} ${d} delivered ${r.invalid} invalid and ${r.reordered} reordered datagrams\n`);
        if (r.late > 0) process.stdout.write(`note: ${name} ${d}: ${r.late} datagrams arrived after ${r.stalls} window write-offs (the server paused for 50 ms or more)\n`);
      }
    }
    const profiles: Record<string, unknown> = {};
    for (const d of bench.options.profile ? DIRECTIONS : []) {
      if (bench.signal.aborted) break;
      // One server per direction, so each profile holds one direction's hot path.
      bench.log(`profiling natpunch under the same load, ${d}`);
      const dir = join(workDir, `cpu-profile-${d}`);
      const load = (await measure(natpunch, { ...context, nodeFlags: cpuProfileFlags(dir) }, bench, [d]))[d];
      const { summary, file } = await collectProfile(dir, bench.resultsDir, `turn-natpunch-${d}`, bench.root);
      printProfile(summary, file, `${d}: ${formatCount(load.rate)} pkt/s while profiled`);
      profiles[d] = { rateWhileProfiled: load.rate, ...profileRecord(summary, file) };
    }
    return {
      benchmark: 'turn',
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, kernel: release(), loadAverage: [loadBefore, loadAfter] },
      settings: { payload: PAYLOAD, flows: FLOWS, window: WINDOW, directions: DIRECTIONS, ...bench.options },
      targets: Object.fromEntries(targets.map((t) => [t.name, t.description])),
      best,
      rounds,
      ratios,
      ...(bench.options.profile ? { profile: profiles } : {}),
    };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

export const benchmark: Benchmark = {
  name: 'turn',
  description: 'relayed ChannelData pkt/s: natpunch serve vs coturn vs a C forwarder ceiling (server core 0, load core 1)',
  run,
};
