/**
 * The real CLI over loopback, without a lab: `natpunch serve` on 127.0.0.1/127.0.0.2 with
 * ephemeral ports, and `listen`/`connect` children whose stdin the test feeds and whose stdout
 * it counts, with their --json events.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { natpunch } from './cli.js';
import { type EventChild, eventChild } from './json-events.js';
import { localHost, stopProcess } from './process.js';
import { startServe } from './serve.js';

/** `natpunch serve` on loopback (no relay: nothing here needs one); stopped after the test. */
export async function loopbackServer(t: TestContext, extra: readonly string[] = ['--no-relay']): Promise<string> {
  const serve = await startServe(localHost, '127.0.0.1', '127.0.0.2', ['--port', '0', '--alt-port', '0', '--http-port', '0', ...extra]);
  t.after(() => serve.stop());
  const [ready] = await serve.output.waitFor([/ready/]);
  const url = /rendezvous (ws:\/\/\S+)/.exec(ready!)?.[1];
  if (!url) throw new Error(`natpunch serve: no rendezvous URL in its ready line: ${ready}`);
  return url;
}

/** A scratch directory for keys and files, removed after the test. */
export async function scratch(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'natpunch-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface CliChild extends EventChild {
  /** Bytes it has written to stdout so far. */
  received(): number;
  /** Write `chunk` to its stdin for as long as it reads (backpressure respected) until it exits. */
  feedForever(): void;
}

/** Start the CLI with piped stdio and its --json events parsed; killed after the test. */
export function startCli(t: TestContext, name: string, args: readonly string[]): CliChild {
  const [node, ...rest] = natpunch(...args);
  return cliChild(t, spawn(node!, rest, { stdio: ['pipe', 'pipe', 'pipe'] }), name);
}

/** A CLI child started elsewhere (a lab host) with piped stdio: events, stdout counted, stdin fed on demand. */
export function cliChild(t: TestContext, child: ChildProcess, name: string): CliChild {
  t.after(() => stopProcess(child));
  let received = 0;
  child.stdout!.on('data', (chunk: Buffer) => { received += chunk.length; });
  child.stdin!.on('error', () => undefined); // EPIPE once it exits
  const events = eventChild(child, name);
  const chunk = Buffer.alloc(64 * 1024);
  const stdin = child.stdin!;
  return {
    ...events,
    received: () => received,
    feedForever: () => {
      const write = (): void => {
        while (child.exitCode === null && !stdin.destroyed && stdin.write(chunk));
        if (child.exitCode === null && !stdin.destroyed) stdin.once('drain', write);
      };
      write();
    },
  };
}
