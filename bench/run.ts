/**
 * `npm run bench`: runs every benchmark under bench/ in turn, prints each one's table, writes
 * bench/results/<name>.json, and ends stdout with one JSON line holding all the results.
 *
 *   node dist/bench/run.js [NAME ...] [--duration-ms 5000] [--warmup-ms 3000] [--rounds 1] [--profile] [--peers N] [--nodes N]
 *
 * Adding a benchmark is one line in `benchmarks` below: its module exports `benchmark`.
 */

import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Benchmark, BenchmarkOptions } from './benchmark.js';
import { probeHostSpeed } from './support/host-speed.js';

const benchmarks: Record<string, () => Promise<{ benchmark: Benchmark }>> = {
  stun: () => import('./stun/index.js'),
  connect: () => import('./connect/index.js'),
  transport: () => import('./transport/index.js'),
  secure: () => import('./secure/index.js'),
  turn: () => import('./turn/index.js'),
  'hard-nat': () => import('./hard-nat/index.js'),
  'stun-attack': () => import('./stun-attack/index.js'),
  rendezvous: () => import('./rendezvous/index.js'),
};

const usage = `usage: node dist/bench/run.js [NAME ...] [--duration-ms MS] [--warmup-ms MS] [--rounds N] [--profile] [--peers N] [--nodes N]
benchmarks: ${Object.keys(benchmarks).join(', ')}`;

function positiveInteger(name: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new RangeError(`bench: --${name} ${text}: expected an integer >= ${min}\n${usage}`);
  return value;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, strict: true, options: {
      'duration-ms': { type: 'string' }, 'warmup-ms': { type: 'string' }, rounds: { type: 'string' },
      profile: { type: 'boolean', default: false }, help: { type: 'boolean', default: false }, peers: { type: 'string' },
      nodes: { type: 'string' },
    },
  });
  if (values.help) {
    process.stdout.write(usage + '\n');
    return 0;
  }
  const unknown = positionals.filter((name) => !(name in benchmarks));
  if (unknown.length > 0) {
    process.stderr.write(`bench: no benchmark named ${unknown.join(', ')}\n${usage}\n`);
    return 2;
  }
  const options: BenchmarkOptions = {
    durationMs: positiveInteger('duration-ms', values['duration-ms'], 5000, 1),
    warmupMs: positiveInteger('warmup-ms', values['warmup-ms'], 3000, 0),
    rounds: positiveInteger('rounds', values.rounds, 1, 1),
    profile: values.profile ?? false,
    ...(values.peers === undefined ? {} : { peers: positiveInteger('peers', values.peers, 10_000, 2) }),
    ...(values.nodes === undefined ? {} : { nodes: positiveInteger('nodes', values.nodes, 1, 1) }),
  };
  // dist/bench/run.js -> the repository root two levels up.
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const resultsDir = join(root, 'bench', 'results');
  const controller = new AbortController();
  const stop = (signal: string): void => controller.abort(new Error(`bench: ${signal}`));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  const selected = positionals.length > 0 ? positionals : Object.keys(benchmarks);
  const summary: Record<string, unknown> = {};
  let failed = false;
  for (const name of selected) {
    if (controller.signal.aborted) break;
    const { benchmark } = await benchmarks[name]!();
    process.stderr.write(`bench ${benchmark.name}: ${benchmark.description}\n`);
    try {
      const before = probeHostSpeed();
      const run = await benchmark.run({
        options, signal: controller.signal, root, resultsDir, log: (line) => process.stderr.write(`  ${line}\n`),
      });
      const after = probeHostSpeed();
      // bench/support/host-speed.ts: a shared host can halve the speed of everything on it unseen.
      process.stdout.write(`host speed probe (JSON round trip of a small message): ${before} us before, ${after} us after; compare runs at similar figures\n`);
      const result = { ...run, hostSpeedUs: { before, after } };
      summary[name] = result;
      await mkdir(resultsDir, { recursive: true });
      await writeFile(join(resultsDir, `${name}.json`), JSON.stringify(result, null, 2) + '\n');
    } catch (error) {
      failed = true;
      summary[name] = { error: (error as Error).message };
      process.stderr.write(`bench ${name} failed: ${(error as Error).stack ?? String(error)}\n`);
    }
  }
  process.stdout.write(JSON.stringify(summary) + '\n');
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (error: unknown) => {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = 2;
  },
);
