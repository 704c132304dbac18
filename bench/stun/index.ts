/**
 * bench/stun: STUN Binding requests per second of `natpunch serve` beside coturn, with the C echo
 * (bench/stun/echo.c) as the ceiling of one core and a node:dgram echo (bench/stun/node-echo.ts)
 * as the most any server written on node:dgram can do, all driven by the same C load generator
 * (bench/stun/load.c). Each server runs alone on loopback pinned to core 0; the generator runs
 * pinned to core 1, sends the same 20-byte Binding requests (fresh transaction ids), keeps the
 * same window outstanding over the same sockets, and counts only Binding success responses
 * with the transaction id it waits for, over the same measured seconds after the same warm-up.
 *
 * Figures beside req/s, all measured over the same window by the generator:
 * - server CPU: cores' worth of CPU the server process used (user+sys). Below ~0.95 the server
 *   did not get its core (other load on the machine) or waited for the generator.
 * - req/CPU-s: requests per second of server CPU, the figure least disturbed by other load.
 * - load CPU: the generator's own share of core 1. The echo run shows what the generator can
 *   drive; a server far below that rate is not limited by the generator.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, cpus, release } from 'node:os';
import { join } from 'node:path';
import type { Benchmark, BenchmarkContext } from '../benchmark.js';
import { BenchError, compileC, freePort, pinned, runToEnd, type Server } from '../support/process.js';
import { formatCount, formatRatio, formatTable } from '../support/table.js';
import { collectProfile, cpuProfileFlags, printProfile, profileRecord, type ProfileSummary } from '../support/cpu-profile.js';
import { LOAD_CORE, LOOPBACK, natpunch, targets, type Target, type TargetContext } from './targets.js';

/**
 * Four sockets with 128 requests outstanding each. A smaller window leaves the server idle
 * whenever the generator is briefly descheduled (measured here: 4 x 32 gave natpunch ~60k/s
 * where 4 x 128 gave ~95k/s on a busy machine); 512 small datagrams still fit every server's
 * receive buffer (no timeouts at this window in any run).
 */
const SOCKETS = 4;
const WINDOW = 128;

/** What bench/stun/load.c prints (one JSON object). */
export interface LoadResult {
  valid: number;
  seconds: number;
  rate: number;
  sent: number;
  timeouts: number;
  stale: number;
  invalid: number;
  sendErrors: number;
  sockets: number;
  window: number;
  loadCpu: number;
  serverUser: number;
  serverSys: number;
  core0Busy: number;
  core1Busy: number;
}

async function measure(target: Target, context: TargetContext, bench: BenchmarkContext): Promise<LoadResult> {
  const port = await freePort();
  const server: Server = await target.start(port, context);
  try {
    const { warmupMs, durationMs } = bench.options;
    const { stdout } = await runToEnd(...pinned(LOAD_CORE, join(context.workDir, 'load'), [
      '--host', LOOPBACK, '--port', String(port), '--sockets', String(SOCKETS), '--window', String(WINDOW),
      '--warmup-ms', String(warmupMs), '--duration-ms', String(durationMs), '--server-pid', String(server.pid),
    ]), { timeoutMs: warmupMs + durationMs + 30_000, signal: bench.signal });
    if (!server.running) throw new BenchError(`${target.name}: exited during the load; output:\n${server.output}`);
    return JSON.parse(stdout.trim().split('\n').at(-1)!) as LoadResult;
  } finally {
    await server.stop();
  }
}

async function profileNatpunch(context: TargetContext, bench: BenchmarkContext): Promise<{ summary: ProfileSummary; file: string; load: LoadResult }> {
  const dir = join(context.workDir, 'cpu-profile');
  const load = await measure(natpunch, { ...context, nodeFlags: cpuProfileFlags(dir) }, bench);
  return { ...await collectProfile(dir, bench.resultsDir, 'stun-natpunch', bench.root), load };
}

async function run(bench: BenchmarkContext): Promise<Record<string, unknown>> {
  const workDir = await mkdtemp(join(tmpdir(), 'natpunch-bench-stun-'));
  try {
    await Promise.all(['echo', 'load'].map((name) =>
      compileC(join(bench.root, 'bench', 'stun', `${name}.c`), join(workDir, name), bench.signal)));
    const context: TargetContext = { workDir, root: bench.root, signal: bench.signal };
    const rounds: Record<string, LoadResult>[] = [];
    for (let round = 1; round <= bench.options.rounds && !bench.signal.aborted; round++) {
      const results: Record<string, LoadResult> = {};
      for (const target of targets) {
        if (bench.signal.aborted) break;
        bench.log(`round ${round}/${bench.options.rounds}: ${target.name} (${bench.options.warmupMs} ms warm-up + ${bench.options.durationMs} ms)`);
        results[target.name] = await measure(target, context, bench);
        bench.log(`${target.name}: ${formatCount(results[target.name]!.rate)} req/s`);
      }
      rounds.push(results);
    }
    if (bench.signal.aborted) throw new BenchError('bench/stun: aborted');
    // The best round of each server: other load on the machine only ever makes a round slower.
    const best: Record<string, LoadResult> = {};
    for (const results of rounds) {
      for (const [name, result] of Object.entries(results)) if (!best[name] || result.rate > best[name]!.rate) best[name] = result;
    }
    const rate = (name: string): number | undefined => best[name]?.rate;
    const rows = targets.map(({ name }) => {
      const r = best[name]!;
      const cpu = r.serverUser + r.serverSys;
      return [name, formatCount(r.rate), formatRatio(r.rate, rate('coturn')), formatRatio(r.rate, rate('echo')), formatRatio(r.rate, rate('node-echo')),
        `${cpu.toFixed(2)} (${r.serverUser.toFixed(2)}+${r.serverSys.toFixed(2)})`, formatCount(r.rate / cpu),
        r.loadCpu.toFixed(2), String(r.timeouts)];
    });
    process.stdout.write(`\nSTUN Binding, 20-byte requests, ${SOCKETS} sockets x ${WINDOW} outstanding, ` +
      `${bench.options.durationMs} ms measured after ${bench.options.warmupMs} ms warm-up, best of ${rounds.length} round(s); ` +
      `server on core 0, generator on core 1\n`);
    process.stdout.write(formatTable(
      ['server', 'req/s', 'vs coturn', 'vs echo', 'vs node-echo', 'server CPU (usr+sys)', 'req/CPU-s', 'load CPU', 'timeouts'], rows) + '\n');
    const ratio = (a: string, b: string): number | null => {
      const x = rate(a);
      const y = rate(b);
      return x !== undefined && y !== undefined && y > 0 ? Number((x / y).toFixed(3)) : null;
    };
    const natpunchVsCoturn = ratio('natpunch', 'coturn');
    // Per CPU-second of the server: what the ratio would be if both had had their core to themselves.
    const perCpu = (name: string): number | undefined => (best[name] ? best[name]!.rate / (best[name]!.serverUser + best[name]!.serverSys) : undefined);
    const natpunchVsCoturnPerCpu = perCpu('natpunch') && perCpu('coturn') ? Number((perCpu('natpunch')! / perCpu('coturn')!).toFixed(3)) : null;
    process.stdout.write(`natpunch / coturn = ${natpunchVsCoturn ?? '-'} in req/s (target >= 1.0); ${natpunchVsCoturnPerCpu ?? '-'} per server CPU-second\n`);

    // The echo run shows what the generator can drive; elsewhere a busy generator means the figure is its, not the server's.
    for (const { name } of targets) {
      const r = best[name]!;
      if (name !== 'echo' && r.loadCpu > 0.9) process.stdout.write(`warning: the generator used ${r.loadCpu.toFixed(2)} of core ${LOAD_CORE} against ${name}: it may be the bottleneck there\n`);
      if (r.timeouts > 0) process.stdout.write(`note: ${r.timeouts} requests to ${name} went unanswered for 200 ms and were reissued (drops)\n`);
    }

    let profile: Record<string, unknown> | undefined;
    if (bench.options.profile && !bench.signal.aborted) {
      bench.log('profiling natpunch under the same load');
      const { summary, file, load } = await profileNatpunch(context, bench);
      printProfile(summary, file, `${formatCount(load.rate)} req/s while profiled`);
      profile = { rateWhileProfiled: load.rate, ...profileRecord(summary, file) };
    }
    return {
      benchmark: 'stun',
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, kernel: release() },
      settings: { request: '20-byte Binding request, fresh transaction id each', sockets: SOCKETS, window: WINDOW, ...bench.options },
      targets: Object.fromEntries(targets.map((t) => [t.name, t.description])),
      best,
      rounds,
      ratios: {
        natpunchVsCoturn, natpunchVsCoturnPerCpu, natpunchVsEcho: ratio('natpunch', 'echo'), natpunchVsNodeEcho: ratio('natpunch', 'node-echo'),
        coturnVsEcho: ratio('coturn', 'echo'), nodeEchoVsCoturn: ratio('node-echo', 'coturn'),
      },
      ...(profile ? { profile } : {}),
    };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

export const benchmark: Benchmark = {
  name: 'stun',
  description: 'Binding requests/s: natpunch serve vs coturn vs a C echo ceiling (server core 0, load core 1)',
  run,
};
