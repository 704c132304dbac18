import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { until } from '../support/wait.js';
import { type CliChild, loopbackServer, scratch, startCli } from '../support/loopback-cli.js';

/**
 * Ctrl-C on either side of a transfer reaches the other side at once (a RESET inside the sealed
 * stream), which reports ERR_PEER_ABORTED and exits 1 within a second; the side interrupted exits
 * with the shell's code for the signal.
 */
for (const [aborting, signal, code] of [['connect', 'SIGINT', 130], ['listen', 'SIGINT', 130], ['connect', 'SIGTERM', 143]] as const) {
  test(`${signal} on ${aborting} mid-transfer: the other side exits 1 with ERR_PEER_ABORTED within 1 s; ${aborting} exits ${code}`, async (t) => {
    const server = await loopbackServer(t);
    const dir = await scratch(t);
    const listen = startCli(t, 'listen', ['listen', '--server', server, '--key', join(dir, 'l.key'), '--once', '--json']);
    const id = String((await listen.until((e) => e['event'] === 'ready', 'ready'))['id']);
    const connect = startCli(t, 'connect', ['connect', id, '--server', server, '--key', join(dir, 'c.key'), '--json']);
    await Promise.all([listen.until((e) => e['event'] === 'connected', 'connected'), connect.until((e) => e['event'] === 'connected', 'connected')]);
    listen.feedForever();
    connect.feedForever();
    // Mid-transfer: bytes have arrived both ways, and more are coming.
    await until(() => listen.received() > 1 << 20 && connect.received() > 1 << 20, 'a MiB each way', { seen: () => `${listen.received()} / ${connect.received()} bytes` });

    const [interrupted, other]: CliChild[] = aborting === 'connect' ? [connect, listen] : [listen, connect];
    const started = performance.now();
    interrupted.child.kill(signal);
    const otherCode = await other.exited(10_000);
    const ms = performance.now() - started;
    assert.equal(otherCode, 1, other.stderr());
    assert.ok(ms < 1000, `the other side took ${Math.round(ms)} ms to stop`);
    const error = other.events.find((e) => e['event'] === 'error');
    assert.equal(error?.['code'], 'ERR_PEER_ABORTED', other.stderr());
    assert.match(String(error?.['message']), /peer aborted the connection.*incomplete/);
    assert.equal(await interrupted.exited(10_000), code, interrupted.stderr());
    assert.equal(interrupted.events.find((e) => e['event'] === 'error')?.['code'], 'ERR_ABORTED');
    // Both end with the summary: what each side moved before the abort.
    for (const side of [interrupted, other]) {
      const closed = side.events.find((e) => e['event'] === 'closed');
      assert.ok(closed && typeof closed['sent'] === 'number' && typeof closed['received'] === 'number', side.stderr());
    }
  });
}
