/**
 * Ctrl-C mid-transfer, through the real CLI: `listen --once` and `connect` pipe data both ways,
 * one of them gets `signal`, and the other must stop at once with ERR_PEER_ABORTED (exit 1,
 * within 1 s) while the interrupted one exits with the signal's code. Run over loopback
 * (test/cli/abort.test.ts) and through real NATs (test/lab/abort.test.ts).
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { until } from './wait.js';
import type { CliChild } from './loopback-cli.js';

export interface AbortCase {
  aborting: 'connect' | 'listen';
  signal: 'SIGINT' | 'SIGTERM';
  /** The interrupted side's exit code: 128 + the signal's number. */
  code: number;
}

export const ABORT_CASES: readonly AbortCase[] = [
  { aborting: 'connect', signal: 'SIGINT', code: 130 },
  { aborting: 'listen', signal: 'SIGINT', code: 130 },
  { aborting: 'connect', signal: 'SIGTERM', code: 143 },
];

/** `startListen()` runs `listen --once --json`; `startConnect(id)` runs `connect ID --json`. */
export async function abortMidTransfer(c: AbortCase, startListen: () => CliChild, startConnect: (id: string) => CliChild): Promise<void> {
  const listen = startListen();
  const id = String((await listen.until((e) => e['event'] === 'ready', 'ready'))['id']);
  const connect = startConnect(id);
  await Promise.all([listen.until((e) => e['event'] === 'connected', 'connected'), connect.until((e) => e['event'] === 'connected', 'connected')]);
  listen.feedForever();
  connect.feedForever();
  // Mid-transfer: bytes have arrived both ways, and more are coming.
  await until(() => listen.received() > 1 << 20 && connect.received() > 1 << 20, 'a MiB each way', { seen: () => `${listen.received()} / ${connect.received()} bytes` });

  const [interrupted, other] = c.aborting === 'connect' ? [connect, listen] : [listen, connect];
  const started = performance.now();
  interrupted.child.kill(c.signal);
  const otherCode = await other.exited(10_000);
  const ms = performance.now() - started;
  assert.equal(otherCode, 1, other.stderr());
  assert.ok(ms < 1000, `the other side took ${Math.round(ms)} ms to stop`);
  const error = other.events.find((e) => e['event'] === 'error');
  assert.equal(error?.['code'], 'ERR_PEER_ABORTED', other.stderr());
  assert.match(String(error?.['message']), /peer aborted the connection.*incomplete/);
  assert.equal(await interrupted.exited(10_000), c.code, interrupted.stderr());
  assert.equal(interrupted.events.find((e) => e['event'] === 'error')?.['code'], 'ERR_ABORTED');
  // Both end with the error, then the summary: what each side moved before the abort.
  for (const side of [interrupted, other]) {
    const events = side.events.map((e) => e['event']);
    assert.deepEqual(events.slice(-2), ['error', 'closed'], side.stderr());
    const closed = side.events.at(-1)!;
    assert.ok(typeof closed['sent'] === 'number' && typeof closed['received'] === 'number', side.stderr());
  }
}
