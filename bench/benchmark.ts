/**
 * What every benchmark under bench/ provides, so that bench/run.ts can run them in turn.
 *
 * A benchmark measures natpunch beside a reference run side by side on the same machine, with
 * the same load, and reports ratios (STYLE §12). It must stop by itself: `run` resolves once
 * its fixed measurement is over and leaves no process, socket or namespace behind, even when
 * it fails or `signal` aborts.
 */

export interface BenchmarkOptions {
  /** Measured seconds per target, after the warm-up (default 5). */
  durationMs: number;
  /** Seconds of load before measuring starts, excluded from the figures (default 3). */
  warmupMs: number;
  /** Times to repeat the whole comparison, interleaving targets; the best round counts (default 1). */
  rounds: number;
  /** Also profile natpunch under load and print where its time goes. */
  profile: boolean;
  /** Simulated peers, for benchmarks that have them (rendezvous: default 10000). */
  peers?: number;
  /** Nodes sharing one Redis, measured after one node (rendezvous: default 1, one node only). */
  nodes?: number;
}

export interface BenchmarkContext {
  options: BenchmarkOptions;
  /** Aborted on SIGINT/SIGTERM: stop the load, kill what was started, reject or return early. */
  signal: AbortSignal;
  /** Absolute path of the repository (the directory holding bench/, src/ and dist/). */
  root: string;
  /** Absolute path of bench/results/ (created on demand, not committed). */
  resultsDir: string;
  /** Progress lines for humans (stderr), so stdout keeps only tables and the final JSON line. */
  log(line: string): void;
}

export interface Benchmark {
  /** Short name, also the file name of its results: bench/results/<name>.json. */
  name: string;
  /** One line: what is compared with what. */
  description: string;
  /** Runs the comparison, prints its table on stdout, and returns the numbers for the JSON summary. */
  run(context: BenchmarkContext): Promise<Record<string, unknown>>;
}
