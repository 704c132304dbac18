import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withLab } from '../../src/lab/index.js';
import { skipUnlessLab } from '../support/lab.js';
import { CLI, waitForLine } from '../support/cli.js';
import { SERVER_URL, startServe } from '../support/peers.js';
import { exited } from '../support/wait.js';

/**
 * Issue 4, "TCP mapping", Hopper's scheme: the server closes idle STUN/TCP connections after
 * 300 ms, far sooner than the peers' 15 s TCP keepalive, so no kept connection can be held. The
 * listener gives keeping up (two idle closes in a row) and signs the mapping of a short
 * connection into its accept; the connector's kept connection is closed by the time it punches.
 * Both punch from L after its connection to the server has closed, and still connect direct-tcp.
 */
const BYTES = 64 << 10;
const DEBUG = 'NODE_DEBUG=natpunch:tcp-mapping,natpunch:peer';

test('--transport tcp, port-restricted × port-restricted, the server closing idle STUN/TCP connections at once: a short connection\'s mapping, direct-tcp, 64 KiB each way', { timeout: 180_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'port-restricted' }, b: { kind: 'port-restricted' } }, async (lab) => {
    await startServe(lab, '--stun-tcp-idle-timeout', '300');
    const dir = await mkdtemp(join(tmpdir(), 'natpunch-short-'));
    try {
      const file = (name: string): string => join(dir, name);
      await writeFile(file('in-l'), randomBytes(BYTES));
      await writeFile(file('in-c'), randomBytes(BYTES));
      const listen = lab.hosts['b1']!.spawn(['sh', '-c',
        `${DEBUG} exec "${process.execPath}" "${CLI}" listen --server ${SERVER_URL} --key ${file('key-l')} --once --json < ${file('in-l')} > ${file('out-l')}`]);
      let listenStderr = '';
      listen.stderr!.on('data', (chunk: Buffer) => { listenStderr += chunk.toString(); });
      const ready = JSON.parse(await waitForLine(listen, /"event":"ready"/)) as { id: string };
      // The kept connection closed while idle twice: the listener keeps none from now on.
      await waitForLine(listen, /cannot be held/, 30_000);
      const listenerConnected = waitForLine(listen, /"event":"(connected|error)"/, 60_000);
      // listen --once exits once both directions have ended; 90 s is a net for a stalled transfer.
      const listenExit = exited(listen, { timeoutMs: 90_000, seen: () => listenStderr });
      for (const settled of [listenerConnected, listenExit]) settled.catch(() => undefined); // awaited below, unless connect failed first
      const connect = await lab.hosts['a1']!.exec(['sh', '-c',
        `${DEBUG} exec "${process.execPath}" "${CLI}" connect ${ready.id} --server ${SERVER_URL} --key ${file('key-c')} --json --transport tcp < ${file('in-c')} > ${file('out-c')}`], { timeoutMs: 120_000 });
      assert.equal(connect.code, 0, `connect failed: ${connect.stderr}`);
      const connector = JSON.parse(connect.stderr.split('\n').find((l) => l.includes('"event":"connected"')) ?? '{}') as Record<string, unknown>;
      const listener = JSON.parse(await listenerConnected) as Record<string, unknown>;
      assert.equal(await listenExit, 0, `listen --once did not exit 0; its stderr:\n${listenStderr}`);
      assert.equal(connector['path'], 'direct-tcp', connect.stderr);
      assert.equal(listener['path'], 'direct-tcp', listenStderr);
      assert.equal(connector['technique'], 'tcp-simultaneous-open');
      // The accept carried a short connection's mapping, on router b's public address.
      const wan = lab.routers['b']!.wanAddress.replace(/\./g, '\\.');
      assert.match(listenStderr, new RegExp(`signing a short connection's mapping, L \\d+, ${wan}:\\d+`), listenStderr);
      const sha = async (name: string): Promise<string> => createHash('sha256').update(await readFile(file(name))).digest('hex');
      assert.equal(await sha('out-c'), await sha('in-l'), 'listener -> connector bytes differ');
      assert.equal(await sha('out-l'), await sha('in-c'), 'connector -> listener bytes differ');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
