/**
 * Time to a direct path through hard NATs (issue 9's benchmark): `natpunch connect` behind NAT a
 * to `natpunch listen --once` behind NAT b, each connect in a lab of its own with fresh keys (the
 * real CLI, as `natpunch lab matrix` runs it: src/lab/matrix.ts runPair), `--transport udp` so
 * the time is the technique's own and never the relay's.
 *
 * Pairs, 20 connects each:
 * - port-restricted × full-cone: the reference, measured in the same run (connection reversal,
 *   the floor of signalling and one round of checks);
 * - port-restricted × symmetric-seq: port prediction (src/punch/port-prediction.ts);
 * - port-restricted × symmetric-random and eim-random-port × symmetric-random: birthday probing
 *   (src/punch/birthday.ts). Targets (issue 9): median ≤ 5 s, p90 ≤ 10 s. For comparison, the
 *   issue measured hyperdht 6.34 in the same lab at 0.2–15 s for port-restricted ×
 *   symmetric-random and ~6.7 s for eim-random-port × symmetric-random.
 *
 * Reported: median and p90 of the connector's own connect time (connect() to the secure stream),
 * and each as a ratio to the reference's median.
 */
import { cpus, loadavg } from 'node:os';
import type { Benchmark, BenchmarkContext } from '../benchmark.js';
import { labSupport, type NatKind } from '../../src/lab/index.js';
import { runPair } from '../../src/lab/matrix.js';

const CONNECTS = 20;
const PAIRS: { a: NatKind; b: NatKind; technique: string; targetMedianMs?: number; targetP90Ms?: number }[] = [
  { a: 'port-restricted', b: 'full-cone', technique: 'reference (reversal)' },
  { a: 'port-restricted', b: 'symmetric-seq', technique: 'prediction' },
  { a: 'port-restricted', b: 'symmetric-random', technique: 'birthday', targetMedianMs: 5_000, targetP90Ms: 10_000 },
  { a: 'eim-random-port', b: 'symmetric-random', technique: 'birthday', targetMedianMs: 5_000, targetP90Ms: 10_000 },
];

/** The value at quantile q of sorted values (nearest rank). */
function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

async function run(bench: BenchmarkContext): Promise<Record<string, unknown>> {
  const support = labSupport();
  if (!support.ok) {
    process.stdout.write(`bench/hard-nat: needs the NAT lab: ${support.reason}\n`);
    return { benchmark: 'hard-nat', date: new Date().toISOString(), skipped: support.reason };
  }
  const loadBefore = loadavg()[0]!;
  const results = [];
  for (const pair of PAIRS) {
    const samples: { ms: number; technique: string }[] = [];
    let failed = 0;
    for (let i = 0; i < CONNECTS; i++) {
      if (bench.signal.aborted) throw new Error('bench/hard-nat: aborted');
      const result = await runPair(pair.a, pair.b, { transport: 'udp', bytes: 4096, signal: bench.signal, pairTimeoutMs: 30_000 });
      if (result.ok && result.path === 'direct-udp') samples.push({ ms: result.ms!, technique: result.technique! });
      else failed++;
      bench.log(`${pair.a} × ${pair.b} ${i + 1}/${CONNECTS}: ${result.ok ? `${result.path} by ${result.technique} in ${result.ms} ms` : `failed: ${result.error}`}`);
    }
    const sorted = samples.map((s) => s.ms).sort((x, y) => x - y);
    results.push({
      ...pair, connects: CONNECTS, direct: samples.length, failed,
      medianMs: sorted.length ? quantile(sorted, 0.5) : null, p90Ms: sorted.length ? quantile(sorted, 0.9) : null,
      techniques: [...new Set(samples.map((s) => s.technique))], samples,
    });
  }
  const reference = results[0]!.medianMs ?? NaN;
  process.stdout.write(`\nTime to a direct path through hard NATs, --transport udp, ${CONNECTS} connects per pair (each in a fresh lab):\n`);
  process.stdout.write(`${'pair'.padEnd(40)} ${'technique'.padEnd(22)} ${'direct'.padStart(6)} ${'median'.padStart(8)} ${'p90'.padStart(8)} ${'× ref'.padStart(7)}  target\n`);
  for (const r of results) {
    const ratio = r.medianMs === null ? '-' : (r.medianMs / reference).toFixed(1);
    const target = r.targetMedianMs ? `median ≤ ${r.targetMedianMs} ms ${r.medianMs !== null && r.medianMs <= r.targetMedianMs ? '✓' : '✗'}, p90 ≤ ${r.targetP90Ms} ms ${r.p90Ms !== null && r.p90Ms <= r.targetP90Ms! ? '✓' : '✗'}` : '';
    process.stdout.write(`${`${r.a} × ${r.b}`.padEnd(40)} ${r.techniques.join(',').padEnd(22)} ${`${r.direct}/${r.connects}`.padStart(6)} ${String(r.medianMs ?? '-').padStart(8)} ${String(r.p90Ms ?? '-').padStart(8)} ${ratio.padStart(7)}  ${target}\n`);
  }
  const loadAfter = loadavg()[0]!;
  if (Math.max(loadBefore, loadAfter) > 0.5) process.stdout.write(`note: 1-minute load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after (on ${cpus().length} CPUs): other work competed\n`);
  return { benchmark: 'hard-nat', date: new Date().toISOString(), machine: { cpus: cpus().length, loadAverage: { before: loadBefore, after: loadAfter } }, referenceMedianMs: reference, pairs: results };
}

export const benchmark: Benchmark = {
  name: 'hard-nat',
  description: 'time to a direct path (median, p90 of 20) for prediction and birthday pairs in the lab, against a cone pair in the same run; birthday targets median ≤ 5 s, p90 ≤ 10 s',
  run,
};
