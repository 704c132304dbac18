/**
 * Summaries of a V8 CPU profile (`node --cpu-prof`): where the samples landed (self time) and
 * which functions were on the stack (inclusive time), per function, so a benchmark can print
 * its hot path without opening DevTools.
 */

import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BenchError } from './process.js';
import { formatCount, formatTable } from './table.js';

/** The parts of the .cpuprofile format (Chrome DevTools protocol `Profiler.Profile`) used here. */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  samples: number[];
  /** Microseconds between consecutive samples (the first from `startTime`). */
  timeDeltas: number[];
}

export interface FunctionCost {
  /** "name file:line", or a V8 pseudo-frame such as "(garbage collector)". */
  name: string;
  /** Where the code lives: this project, Node's own JavaScript, or a V8 pseudo-frame. */
  origin: 'natpunch' | 'node' | 'v8' | 'other';
  selfMs: number;
  totalMs: number;
}

export interface ProfileSummary {
  sampledMs: number;
  /** Self time by origin, in ms; `idle` is time the event loop waited for the kernel. */
  byOrigin: Record<FunctionCost['origin'] | 'idle', number>;
  functions: FunctionCost[];
}

function describe(frame: CpuProfile['nodes'][number]['callFrame'], root: string): { name: string; origin: FunctionCost['origin'] } {
  const fn = frame.functionName || '(anonymous)';
  if (frame.url === '') return { name: fn, origin: fn.startsWith('(') ? 'v8' : 'other' };
  let file = frame.url.startsWith('file://') ? decodeURIComponent(frame.url.slice('file://'.length)) : frame.url;
  if (file.startsWith(root)) file = file.slice(root.length);
  const origin = file.startsWith('node:') ? 'node' : file.startsWith('dist/src/') ? 'natpunch' : 'other';
  return { name: `${fn} ${file}:${frame.lineNumber + 1}`, origin };
}

/** Self and inclusive time per function; `root` (the repository path, ending in "/") is cut from file names. */
export function summariseProfile(profile: CpuProfile, root: string): ProfileSummary {
  const parent = new Map<number, number>();
  const byId = new Map<number, CpuProfile['nodes'][number]>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const names = new Map<number, { name: string; origin: FunctionCost['origin'] }>();
  for (const node of profile.nodes) names.set(node.id, describe(node.callFrame, root));

  const costs = new Map<string, FunctionCost>();
  const cost = (id: number): FunctionCost => {
    const { name, origin } = names.get(id)!;
    let entry = costs.get(name);
    if (!entry) costs.set(name, (entry = { name, origin, selfMs: 0, totalMs: 0 }));
    return entry;
  };
  const byOrigin = { natpunch: 0, node: 0, v8: 0, other: 0, idle: 0 };
  let sampledMs = 0;
  // Sample i lasted until sample i+1 was taken: timeDeltas[i + 1] microseconds.
  for (let i = 0; i < profile.samples.length; i++) {
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const id = profile.samples[i]!;
    sampledMs += ms;
    const self = cost(id);
    self.selfMs += ms;
    if (self.name === '(idle)') byOrigin.idle += ms;
    else byOrigin[self.origin] += ms;
    // Inclusive: each distinct function on the stack once (recursion must not count twice).
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined && byId.has(at); at = parent.get(at)) {
      const entry = cost(at);
      if (seen.has(entry.name)) continue;
      seen.add(entry.name);
      entry.totalMs += ms;
    }
  }
  const functions = [...costs.values()].filter((f) => f.name !== '(root)');
  return { sampledMs, byOrigin, functions };
}

/** `node` flags that make a server write a CPU profile into `dir` when it exits (SIGTERM included). */
export function cpuProfileFlags(dir: string): string[] {
  return ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '250'];
}

/**
 * The profile `node --cpu-prof` wrote into `dir` (exactly one expected), copied to
 * `resultsDir/<name>.cpuprofile` for DevTools, and its summary.
 */
export async function collectProfile(dir: string, resultsDir: string, name: string, root: string): Promise<{ summary: ProfileSummary; file: string }> {
  const [written] = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  if (!written) throw new BenchError(`${name}: no .cpuprofile in ${dir} after SIGTERM (node --cpu-prof writes it at exit)`);
  await mkdir(resultsDir, { recursive: true });
  const file = join(resultsDir, `${name}.cpuprofile`);
  await copyFile(join(dir, written), file);
  return { summary: summariseProfile(JSON.parse(await readFile(file, 'utf8')) as CpuProfile, root), file };
}

/** Where a server's busy time went, by origin and the top functions by self and inclusive time; `headline` says under what load. */
export function printProfile(summary: ProfileSummary, file: string, headline: string): void {
  // Shares of the time the thread was not waiting in the event loop: where the work went.
  const { byOrigin } = summary;
  const busy = summary.sampledMs - byOrigin.idle;
  const pct = (ms: number): string => `${((100 * ms) / busy).toFixed(1)}%`;
  process.stdout.write(`\nnatpunch CPU profile under load (${headline}; ${file})\n`);
  process.stdout.write(`of ${formatCount(busy)} ms busy (${formatCount(byOrigin.idle)} ms idle in the event loop): ` +
    `natpunch JS ${pct(byOrigin.natpunch)}, node JS ${pct(byOrigin.node)}, V8 and native code ${pct(byOrigin.v8 + byOrigin.other)} ` +
    `(syscalls show up as self time of the JS function that made them, e.g. doSend)\n`);
  const top = (key: 'selfMs' | 'totalMs', n: number, keep: (name: string) => boolean): string[][] =>
    [...summary.functions].filter((f) => keep(f.name)).sort((a, b) => b[key] - a[key]).slice(0, n)
      .map((f) => [f.name, pct(f.selfMs), pct(f.totalMs)]);
  process.stdout.write(formatTable(['top self time', 'self', 'total'], top('selfMs', 15, (name) => name !== '(idle)')) + '\n\n');
  process.stdout.write(formatTable(['top inclusive time (JS)', 'self', 'total'],
    top('totalMs', 15, (name) => !name.startsWith('('))) + '\n');
}

/** What the results JSON keeps of a profile. */
export function profileRecord(summary: ProfileSummary, file: string): Record<string, unknown> {
  return { file, sampledMs: summary.sampledMs, byOrigin: summary.byOrigin, top: [...summary.functions].sort((a, b) => b.selfMs - a.selfMs).slice(0, 25) };
}
