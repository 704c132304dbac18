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
import { type RunningServe, startServe } from '../support/serve.js';
import { exited } from '../support/wait.js';

/**
 * Acceptance: `natpunch listen` outlives its rendezvous server. The listener sits behind a
 * port-restricted NAT; `natpunch serve` in the server host is killed (SIGKILL: no goodbye, the
 * kernel just closes its sockets) and started again on the same address and ports; or the NAT
 * resets the listener's WebSocket connection, as one that lost its state does. The listener
 * reports the loss, registers again by itself (a new hello, a new STUN proof of its srflx from
 * the same UDP socket, a new signed registration) and reports that; a connector that only now
 * starts reaches it over direct-udp, 64 KiB each way intact. Before, the listener stayed deaf.
 */
const BYTES = 64 << 10;
const SERVE_EXTRA = ['--http-port', '8080'];

/** SIGKILL to the process group of a lab process, resolved once it has exited (a few seconds at most). */
async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const ended = exited(child, { timeoutMs: 5000 });
  process.kill(-child.pid!, 'SIGKILL');
  await ended;
}

/** Each `--json` event line of `output` matching `event`, parsed, in order. */
function events(output: ProcessOutput, event: string): Record<string, unknown>[] {
  return output.text.split('\n').filter((l) => l.startsWith('{') && l.includes(`"event":"${event}"`)).map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function sha(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

interface Scenario {
  lab: Lab;
  listener: ProcessOutput;
  /** The listener's peer id. */
  id: string;
  file(name: string): string;
}

/**
 * A lab (both sides port-restricted) with `natpunch serve`, and `natpunch listen --once --json`
 * in b1 registered there; `run` breaks something and waits for the listener to come back.
 */
async function scenario(t: Parameters<typeof skipUnlessLab>[0], run: (s: Scenario, serve: RunningServe) => Promise<void>): Promise<void> {
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
      try {
        const [ready] = await listener.waitFor([/"event":"ready"/], 60_000);
        await run({ lab, listener, id: String((JSON.parse(ready!) as { id: string }).id), file }, serve);
      } finally {
        await kill(listener.child);
        await serve.stop();
      }
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The listener's `reconnected` event, checked: a new STUN proof of its mapping on router b's WAN address. */
async function reconnected({ lab, listener }: Scenario): Promise<Record<string, unknown>> {
  const [back] = await listener.waitFor([/"event":"reconnected"/], 90_000);
  const event = JSON.parse(back!) as Record<string, unknown>;
  assert.match(String(event['srflx']), new RegExp(`^${lab.routers['b']!.wanAddress.replace(/\./g, '\\.')}:\\d+$`), back);
  assert.ok(Number(event['attempts']) >= 1 && Number(event['downMs']) > 0, back);
  return event;
}

/** A connector that only now starts reaches the listener over direct-udp; 64 KiB each way arrive intact. */
async function reachedOverUdp({ lab, listener, id, file }: Scenario): Promise<void> {
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
  assert.equal(events(listener, 'disconnected').length, 1, output);
  assert.equal(await sha(file('out-c')), await sha(file('in-l')), 'listener -> connector bytes differ');
  assert.equal(await sha(file('out-l')), await sha(file('in-c')), 'connector -> listener bytes differ');
}

test('a listener behind a port-restricted NAT registers again after natpunch serve is killed and restarted, and is then reached over direct-udp (64 KiB each way)', { timeout: 240_000 }, async (t) => {
  await scenario(t, async (s, serve) => {
    await kill(serve.output.child);
    const [lost] = await s.listener.waitFor([/"event":"disconnected"/], 60_000);
    const disconnected = JSON.parse(lost!) as Record<string, unknown>;
    // A killed server says nothing: the connection just ends. Retried, so a delay is given.
    assert.equal(disconnected['reason'], 'closed', lost);
    assert.equal(typeof disconnected['retryInMs'], 'number', lost);
    const restarted = await startServe(s.lab.server, '198.51.100.10', '198.51.100.11', SERVE_EXTRA);
    try {
      await reconnected(s);
      await reachedOverUdp(s);
    } finally {
      await restarted.stop();
    }
  });
});

test('a listener whose NAT resets its WebSocket connection registers again from a new port and is reached over direct-udp (64 KiB each way)', { timeout: 240_000 }, async (t) => {
  await scenario(t, async (s) => {
    // The WebSocket: b1 -> the server's port 8080, as router b tracks it.
    const router = s.lab.routers['b']!;
    const b1 = s.lab.hosts['b1']!.addresses[0]!;
    const ws = (await router.conntrack()).filter((e) => e.proto === 'tcp' && e.src === b1 && e.dport === 8080 && e.state === 'ESTABLISHED');
    assert.equal(ws.length, 1, JSON.stringify(ws));
    // From now on the router answers that connection's packets with RST, as a NAT that lost its
    // state does: the listener's next pong (the server pings every 15 s) ends it. The server
    // still holds the old socket; the new registration of the same id replaces it there.
    const rule = await router.exec(['nft', 'insert', 'rule', 'ip', 'natlab', 'forward', 'iifname', 'lan', 'ip', 'saddr', b1, 'tcp', 'sport', String(ws[0]!.sport), 'tcp', 'dport', '8080', 'reject', 'with', 'tcp', 'reset'], { timeoutMs: 20_000 });
    assert.equal(rule.code, 0, rule.stderr);
    const [lost] = await s.listener.waitFor([/"event":"disconnected"/], 60_000);
    assert.equal((JSON.parse(lost!) as Record<string, unknown>)['reason'], 'closed', lost);
    await reconnected(s);
    const fresh = (await router.conntrack()).filter((e) => e.proto === 'tcp' && e.src === b1 && e.dport === 8080 && e.state === 'ESTABLISHED');
    assert.ok(fresh.length === 1 && fresh[0]!.sport !== ws[0]!.sport, `a new WebSocket from a new port: ${JSON.stringify(fresh)}`);
    await reachedOverUdp(s);
  });
});
