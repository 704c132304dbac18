/**
 * The NAT matrix (`natpunch lab matrix`): for every unordered pair of NAT kinds, a lab with one
 * NAT of each, `natpunch serve` (STUN, rendezvous, relay) in the server host, `natpunch listen
 * --once` behind NAT b and `natpunch connect` behind NAT a, the real CLI as a user runs it. Each
 * pair reports what carried the connection (path, technique), how long the connect took, and
 * whether a small payload arrived intact both ways; or why it failed.
 *
 * The grid is what a user asks first ("will natpunch connect my two networks, and how?") and
 * what a change to the traversal code must not make worse.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitForLine } from '../cli/wait-for-line.js';
import { withLab } from './lab.js';
import { realClock, sleep } from '../clock.js';
import type { NatKind } from './nat-kind.js';

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const SERVER_URL = 'ws://198.51.100.10:8080/';

export interface MatrixOptions {
  /** The kinds to pair (every unordered pair, each kind with itself too). */
  kinds: readonly NatKind[];
  /** `--transport` for the connects (default auto). */
  transport?: 'auto' | 'udp' | 'tcp' | 'relay';
  /** Bytes sent each way over each connection and compared (default 64 KiB). */
  bytes?: number;
  /** One pair's connect and transfer, at most (default 45 s: a failed direct attempt, then the relay). */
  pairTimeoutMs?: number;
  /**
   * How long a connection that started on the relay is held open for an upgrade to a direct path
   * (default UPGRADE_WAIT_MS) before the payload is sent.
   */
  upgradeWaitMs?: number;
  /** Called as each pair finishes (progress). */
  onResult?: (result: PairResult, index: number, total: number) => void;
  signal?: AbortSignal;
}

export interface PairResult {
  a: NatKind;
  b: NatKind;
  ok: boolean;
  /**
   * What carried the connection in the end: 'direct-udp', 'direct-tcp' or 'relay' (as the
   * connector reported it: its `connected` event, or the `path` event of an upgrade).
   */
  path?: string;
  technique?: string;
  /** The connector's own time from connect() to the secure stream, ms. */
  ms?: number;
  /** The path it started on, when that was the relay and it moved to a direct path later. */
  startPath?: string;
  /** Time from connect() to a direct path: `ms` when it started direct, else when the upgrade came. */
  directMs?: number;
  /** Wall time of the whole pair: lab up, server, both peers, transfer, lab down. */
  wallMs: number;
  /** Why it failed, in the CLI's own words where it said any. */
  error?: string;
  /**
   * The connector's report as the server counted it (`natpunch_rendezvous_reports_total`,
   * role initiator): the path and technique the connection was ready on, and the NAT classes
   * the server proved for each side. Absent when the server counted none.
   */
  reported?: ReportedSample;
}

/** One `natpunch_rendezvous_reports_total{role="initiator"}` series of the pair's server. */
export interface ReportedSample {
  outcome: string;
  path: string;
  technique: string;
  initiatorNat: string;
  targetNat: string;
}

/**
 * The default of MatrixOptions.upgradeWaitMs. `--transport auto` may start on the relay while a
 * slow direct technique is still at work — birthday probing runs up to ~8 s (punch/birthday.ts)
 * — and moves the stream when that succeeds. 15 s covers it, and the first re-punch of the
 * upgrade loop (peer/recovery.ts, 5 s after connecting) with its own 10 s limit in part.
 */
export const UPGRADE_WAIT_MS = 15_000;

/** Every unordered pair of `kinds` (i <= j), in order. */
export function matrixPairs(kinds: readonly NatKind[]): [NatKind, NatKind][] {
  const pairs: [NatKind, NatKind][] = [];
  for (let i = 0; i < kinds.length; i++) for (let j = i; j < kinds.length; j++) pairs.push([kinds[i]!, kinds[j]!]);
  return pairs;
}

/** Runs the pairs one after another (each in a lab of its own, torn down before the next). */
export async function runMatrix(options: MatrixOptions): Promise<PairResult[]> {
  const pairs = matrixPairs(options.kinds);
  const results: PairResult[] = [];
  for (const [a, b] of pairs) {
    if (options.signal?.aborted) break;
    const result = await runPair(a, b, options);
    results.push(result);
    options.onResult?.(result, results.length, pairs.length);
  }
  return results;
}

function lines(child: ChildProcess, stream: 'stdout' | 'stderr'): () => string {
  let text = '';
  child[stream]?.on('data', (chunk: Buffer) => { text = (text + chunk.toString()).slice(-8192); });
  return () => text;
}

function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve(child.exitCode) : new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** All of a child's stdout. */
function collect(child: ChildProcess): Promise<Buffer> {
  const chunks: Buffer[] = [];
  child.stdout!.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve) => child.stdout!.once('end', () => resolve(Buffer.concat(chunks))));
}

const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** A `path` event (CLI --json) that names a direct path. */
const DIRECT_PATH_EVENT = /"event":"path".*"path":"direct-/;

/** The JSON "connected" or "error" event on a CLI's stderr, whichever comes first. */
async function outcome(child: ChildProcess, timeoutMs: number): Promise<Record<string, unknown>> {
  return JSON.parse(await waitForLine(child, /"event":"(connected|error)"/, timeoutMs)) as Record<string, unknown>;
}

function withReport(result: PairResult, reported: ReportedSample | undefined): PairResult {
  return reported ? { ...result, reported } : result;
}

/** How long the server may take to notice both peers gone, after they exited. */
const SERVER_SETTLE_MS = 5_000;

/**
 * The connector's report as the pair's server counted it, read from `/metrics` inside the server
 * host (with the run's bearer token) once both peers have left: a peer's report travels on its
 * WebSocket before its close, so a server that has seen every close has counted every report.
 */
async function serverReport(server: { exec(argv: string[], options?: { timeoutMs?: number }): Promise<{ code: number | null; stdout: string; stderr: string }> }, token: string): Promise<ReportedSample | undefined> {
  const script = `fetch('http://198.51.100.10:8080/metrics', { headers: { authorization: 'Bearer ${token}' } })`
    + '.then(async (r) => { if (!r.ok) throw new Error(`GET /metrics: ${r.status}`); process.stdout.write(await r.text()); })';
  const deadline = performance.now() + SERVER_SETTLE_MS;
  for (;;) {
    const scrape = await server.exec([process.execPath, '-e', script], { timeoutMs: 10_000 });
    if (scrape.code !== 0) throw new Error(`reading natpunch serve's /metrics in the server host: exited ${scrape.code}: ${scrape.stderr.trim()}`);
    const peers = /^natpunch_rendezvous_peers (\d+)$/m.exec(scrape.stdout)?.[1];
    if (peers === '0' || performance.now() > deadline) {
      const line = scrape.stdout.split('\n').find((l) => l.startsWith('natpunch_rendezvous_reports_total{') && l.includes('role="initiator"'));
      if (!line) return undefined;
      const label = (name: string): string => new RegExp(`${name}="([^"]*)"`).exec(line)?.[1] ?? '';
      return { outcome: label('outcome'), path: label('path'), technique: label('technique'), initiatorNat: label('initiator_nat'), targetNat: label('target_nat') };
    }
    await sleep(realClock, 50);
  }
}

/**
 * One pair: a lab of its own, `natpunch serve`, `listen --once` behind b, `connect` behind a, the
 * payload both ways; what carried it and how long it took (also bench/hard-nat's one sample).
 */
export async function runPair(a: NatKind, b: NatKind, options: Omit<MatrixOptions, 'kinds' | 'onResult'>): Promise<PairResult> {
  const started = performance.now();
  const timeoutMs = options.pairTimeoutMs ?? 45_000;
  const bytes = options.bytes ?? 64 * 1024;
  const transport = options.transport ?? 'auto';
  const wallMs = (): number => Math.round(performance.now() - started);
  // Fresh keys per pair, as two new users would have.
  const keys = await mkdtemp(join(tmpdir(), 'natpunch-matrix-'));
  try {
    return await withLab({ a: { kind: a }, b: { kind: b }, signal: options.signal }, async (lab) => {
      const token = randomBytes(16).toString('hex');
      const serve = lab.server.spawn([process.execPath, CLI, 'serve', '--address', '198.51.100.10', '--alt-address', '198.51.100.11', '--http-port', '8080', '--metrics-token', token]);
      // The server's view is extra information: a pair is judged by what the peers did.
      const reported = (): Promise<ReportedSample | undefined> => serverReport(lab.server, token).catch(() => undefined);
      const serveOutput = lines(serve, 'stderr');
      await waitForLine(serve, /ready/, 20_000).catch((error: Error) => { throw new Error(`natpunch serve: ${error.message} ${serveOutput()}`); });
      const fromListener = randomBytes(bytes);
      const fromConnector = randomBytes(bytes);
      const listen = lab.hosts.b1!.spawn([process.execPath, CLI, 'listen', '--server', SERVER_URL, '--key', join(keys, 'listen.key'), '--once', '--json']);
      const listenOut = collect(listen);
      const listenErr = lines(listen, 'stderr');
      listen.stdin!.end(fromListener);
      const ready = JSON.parse(await waitForLine(listen, /"event":"(ready|error)"/, 20_000)) as { event: string; id?: string; message?: string };
      if (ready.event !== 'ready') throw new Error(`natpunch listen: ${ready.message ?? JSON.stringify(ready)}`);
      const listenerOutcome = outcome(listen, timeoutMs);
      listenerOutcome.catch(() => undefined);
      const connect = lab.hosts.a1!.spawn([process.execPath, CLI, 'connect', ready.id!, '--server', SERVER_URL, '--key', join(keys, 'connect.key'), '--transport', transport, '--json']);
      const connectOut = collect(connect);
      const connectErr = lines(connect, 'stderr');
      // A direct path the connection moves to (the connector's `path` events), from the start.
      const upgraded = waitForLine(connect, DIRECT_PATH_EVENT, timeoutMs + (options.upgradeWaitMs ?? UPGRADE_WAIT_MS))
        .then((line) => ({ event: JSON.parse(line) as Record<string, unknown>, at: performance.now() }));
      upgraded.catch(() => undefined);
      const event: Record<string, unknown> = await outcome(connect, timeoutMs).catch((error: Error) => ({ event: 'error', message: `${error.message} ${connectErr()}` }));
      if (event.event !== 'connected') {
        connect.stdin!.end();
        listen.kill('SIGTERM');
        await Promise.race([Promise.all([exited(connect), exited(listen)]), sleep(realClock, SERVER_SETTLE_MS)]);
        return withReport({ a, b, ok: false, wallMs: wallMs(), error: String(event.message ?? JSON.stringify(event)) }, await reported());
      }
      const connectedAt = performance.now();
      let result: Omit<PairResult, 'ok' | 'wallMs'> = { a, b, path: String(event.path), technique: String(event.technique), ms: Number(event.ms) };
      if (result.path === 'relay') {
        // Hold the connection open (its stdin) until it moves to a direct path, or the wait is over.
        const upgrade = await Promise.race([upgraded, sleep(realClock, options.upgradeWaitMs ?? UPGRADE_WAIT_MS).then(() => undefined)]).catch(() => undefined);
        if (upgrade) {
          result = {
            ...result, startPath: 'relay', path: String(upgrade.event.path), technique: String(upgrade.event.technique),
            directMs: Math.round(result.ms! + Math.max(0, upgrade.at - connectedAt)),
          };
        }
      } else {
        result.directMs = result.ms;
      }
      connect.stdin!.end(fromConnector);
      const [gotByConnector, gotByListener, connectCode, listenCode] = await Promise.all([connectOut, listenOut, exited(connect), exited(listen)]);
      const report = await reported();
      if (connectCode !== 0 || listenCode !== 0) {
        return withReport({ ...result, ok: false, wallMs: wallMs(), error: `connected, then exited ${connectCode} (connect) and ${listenCode} (listen): ${connectErr()} ${listenErr()}`.trim() }, report);
      }
      if (sha(gotByConnector) !== sha(fromListener) || sha(gotByListener) !== sha(fromConnector)) {
        return withReport({ ...result, ok: false, wallMs: wallMs(), error: `connected, but the ${bytes} bytes did not arrive intact both ways` }, report);
      }
      return withReport({ ...result, ok: true, wallMs: wallMs() }, report);
    });
  } catch (error) {
    return { a, b, ok: false, wallMs: wallMs(), error: (error as Error).message };
  } finally {
    await rm(keys, { recursive: true, force: true });
  }
}
