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
  /** Called as each pair finishes (progress). */
  onResult?: (result: PairResult, index: number, total: number) => void;
  signal?: AbortSignal;
}

export interface PairResult {
  a: NatKind;
  b: NatKind;
  ok: boolean;
  /** What carried the connection: 'direct-udp', 'direct-tcp' or 'relay' (as the connector reported it). */
  path?: string;
  technique?: string;
  /** The connector's own time from connect() to the secure stream, ms. */
  ms?: number;
  /** Wall time of the whole pair: lab up, server, both peers, transfer, lab down. */
  wallMs: number;
  /** Why it failed, in the CLI's own words where it said any. */
  error?: string;
}

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

/** The JSON "connected" or "error" event on a CLI's stderr, whichever comes first. */
async function outcome(child: ChildProcess, timeoutMs: number): Promise<Record<string, unknown>> {
  return JSON.parse(await waitForLine(child, /"event":"(connected|error)"/, timeoutMs)) as Record<string, unknown>;
}

async function runPair(a: NatKind, b: NatKind, options: MatrixOptions): Promise<PairResult> {
  const started = performance.now();
  const timeoutMs = options.pairTimeoutMs ?? 45_000;
  const bytes = options.bytes ?? 64 * 1024;
  const transport = options.transport ?? 'auto';
  const wallMs = (): number => Math.round(performance.now() - started);
  // Fresh keys per pair, as two new users would have.
  const keys = await mkdtemp(join(tmpdir(), 'natpunch-matrix-'));
  try {
    return await withLab({ a: { kind: a }, b: { kind: b }, signal: options.signal }, async (lab) => {
      const serve = lab.server.spawn([process.execPath, CLI, 'serve', '--address', '198.51.100.10', '--alt-address', '198.51.100.11', '--http-port', '8080']);
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
      connect.stdin!.end(fromConnector);
      const event: Record<string, unknown> = await outcome(connect, timeoutMs).catch((error: Error) => ({ event: 'error', message: `${error.message} ${connectErr()}` }));
      if (event.event !== 'connected') {
        listen.kill('SIGTERM');
        return { a, b, ok: false, wallMs: wallMs(), error: String(event.message ?? JSON.stringify(event)) };
      }
      const result = { a, b, path: String(event.path), technique: String(event.technique), ms: Number(event.ms) };
      const [gotByConnector, gotByListener, connectCode, listenCode] = await Promise.all([connectOut, listenOut, exited(connect), exited(listen)]);
      if (connectCode !== 0 || listenCode !== 0) {
        return { ...result, ok: false, wallMs: wallMs(), error: `connected, then exited ${connectCode} (connect) and ${listenCode} (listen): ${connectErr()} ${listenErr()}`.trim() };
      }
      if (sha(gotByConnector) !== sha(fromListener) || sha(gotByListener) !== sha(fromConnector)) {
        return { ...result, ok: false, wallMs: wallMs(), error: `connected, but the ${bytes} bytes did not arrive intact both ways` };
      }
      return { ...result, ok: true, wallMs: wallMs() };
    });
  } catch (error) {
    return { a, b, ok: false, wallMs: wallMs(), error: (error as Error).message };
  } finally {
    await rm(keys, { recursive: true, force: true });
  }
}
