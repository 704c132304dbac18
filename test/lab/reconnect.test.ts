import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withLab, type Lab } from '../../src/lab/index.js';
import { skipUnlessLab } from '../support/lab.js';
import { CLI } from '../support/cli.js';
import { SERVER_URL } from '../support/peers.js';
import { ProcessOutput } from '../support/process.js';
import { startServe } from '../support/serve.js';

/**
 * Acceptance: `natpunch listen` outlives its rendezvous server. The listener sits behind a
 * port-restricted NAT; `natpunch serve` in the server host is killed (SIGKILL: no goodbye, the
 * kernel just closes its sockets) and started again on the same address and ports. The listener
 * reports the loss, registers again by itself (a new hello, a new STUN proof of its srflx from
 * the same UDP socket, a new signed registration) and reports that; a connector that only now
 * starts reaches it over direct-udp, 64 KiB each way intact. Before, the listener stayed deaf.
 */
const BYTES = 64 << 10;
const SERVE_EXTRA = ['--http-port', '8080'];

/** SIGKILL to the process group of a lab process, resolved once it has exited. */
async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(-child.pid!, 'SIGKILL');
  await exited;
}

/** Each `--json` event line of `output` matching `event`, parsed, in order. */
function events(output: ProcessOutput, event: string): Record<string, unknown>[] {
  return output.text.split('\n').filter((l) => l.startsWith('{') && l.includes(`"event":"${event}"`)).map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function sha(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

test('a listener behind a port-restricted NAT registers again after natpunch serve is killed and restarted, and is then reached over direct-udp (64 KiB each way)', { timeout: 240_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  const dir = await mkdtemp(join(tmpdir(), 'natpunch-reconnect-'));
  const file = (name: string): string => join(dir, name);
  try {
    await writeFile(file('in-l'), randomBytes(BYTES));
    await writeFile(file('in-c'), randomBytes(BYTES));
    await withLab({ a: { kind: 'port-restricted' }, b: { kind: 'port-restricted' } }, async (lab: Lab) => {
      const serve = await startServe(lab.server, '198.51.100.10', '198.51.100.11', SERVE_EXTRA);
      const listener = new ProcessOutput(lab.hosts['b1']!.spawn(['sh', '-c',
        `exec "${process.execPath}" "${CLI}" listen --server ${SERVER_URL} --key ${file('key-l')} --once --json < ${file('in-l')} > ${file('out-l')}`]), 'natpunch listen');
      const [ready] = await listener.waitFor([/"event":"ready"/], 60_000);
      const id = String((JSON.parse(ready!) as { id: string }).id);

      await kill(serve.output.child);
      const [lost] = await listener.waitFor([/"event":"disconnected"/], 60_000);
      const disconnected = JSON.parse(lost!) as Record<string, unknown>;
      // A killed server says nothing: the connection just ends. Retried, so a delay is given.
      assert.equal(disconnected['reason'], 'closed', lost);
      assert.equal(typeof disconnected['retryInMs'], 'number', lost);

      const restarted = await startServe(lab.server, '198.51.100.10', '198.51.100.11', SERVE_EXTRA);
      try {
        const [back] = await listener.waitFor([/"event":"reconnected"/], 90_000);
        const reconnected = JSON.parse(back!) as Record<string, unknown>;
        // The new STUN proof: the listener's mapping on router b's WAN address.
        assert.match(String(reconnected['srflx']), new RegExp(`^${lab.routers['b']!.wanAddress.replace(/\./g, '\\.')}:\\d+$`), back);
        assert.ok(Number(reconnected['attempts']) >= 1 && Number(reconnected['downMs']) > 0, back);

        const connect = await lab.hosts['a1']!.exec(['sh', '-c',
          `exec "${process.execPath}" "${CLI}" connect ${id} --server ${SERVER_URL} --key ${file('key-c')} --transport udp --json < ${file('in-c')} > ${file('out-c')}`], { timeoutMs: 120_000 });
        assert.equal(connect.code, 0, `connect failed: ${connect.stderr}\nlisten's output:\n${listener.text}`);
        const connected = connect.stderr.split('\n').find((l) => l.includes('"event":"connected"'));
        assert.equal((JSON.parse(connected ?? '{}') as Record<string, unknown>)['path'], 'direct-udp', connect.stderr);
        // listen --once exits 0 once both directions have ended.
        const output = await listener.ended(90_000);
        assert.equal(listener.exit, 'exit 0', output);
        if (process.env['RC_DEBUG']) console.log(output);
        assert.equal(events(listener, 'connected')[0]?.['path'], 'direct-udp', output);
        assert.deepEqual(events(listener, 'disconnected').length, 1, output);
        assert.equal(await sha(file('out-c')), await sha(file('in-l')), 'listener -> connector bytes differ');
        assert.equal(await sha(file('out-l')), await sha(file('in-c')), 'connector -> listener bytes differ');
      } finally {
        await restarted.stop();
        await kill(listener.child);
      }
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
