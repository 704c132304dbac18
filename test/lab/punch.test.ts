import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withLab } from '../../src/lab/index.js';
import { CLI, runCli } from '../support/cli.js';
import { skipUnlessLab } from '../support/lab.js';
import { startServe } from '../support/peers.js';

/**
 * Serverless punching through two port-restricted NATs (issue 10): each peer learns its public
 * endpoint with `natpunch check --local-port P` against the lab's STUN server, the two
 * endpoints are exchanged (here by the test, in real life by chat or phone), and both run
 * `natpunch punch --local-port P --peer THEIRS --peer-id THEIRS`. No rendezvous is involved
 * after `check`: the server only answered STUN.
 */
test('port-restricted × port-restricted: natpunch punch after natpunch check, direct-udp, 1 MiB each way intact', { timeout: 180_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  const dir = await mkdtemp(join(tmpdir(), 'natpunch-punch-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await withLab({ a: { kind: 'port-restricted' }, b: { kind: 'port-restricted' } }, async (lab) => {
    await startServe(lab);
    const port = 40_000;
    const sides = ['a1', 'b1'] as const;
    const ids: Record<string, string> = {};
    for (const host of sides) {
      const id = await runCli('id', '--key', join(dir, `${host}.key`));
      assert.equal(id.code, 0, id.stderr);
      ids[host] = id.stdout.trim();
      await writeFile(join(dir, `${host}.in`), randomBytes(1 << 20));
    }
    const mapped: Record<string, string> = {};
    await Promise.all(sides.map(async (host) => {
      const check = await lab.hosts[host]!.exec([process.execPath, CLI, 'check', '--stun', '198.51.100.10', '--local-port', String(port), '--json'], { timeoutMs: 60_000 });
      assert.equal(check.code, 0, check.stderr);
      const report = JSON.parse(check.stdout) as { mappedAddress: string; natted: boolean; mapping: string };
      assert.equal(report.natted, true);
      assert.equal(report.mapping, 'endpoint-independent');
      mapped[host] = report.mappedAddress;
    }));
    const other = (host: string): string => (host === 'a1' ? 'b1' : 'a1');
    const runs = await Promise.all(sides.map((host) => lab.hosts[host]!.exec(['sh', '-c',
      `exec "${process.execPath}" "${CLI}" punch --local-port ${port} --peer ${mapped[other(host)]} --peer-id ${ids[other(host)]} `
      + `--key ${join(dir, `${host}.key`)} --json < ${join(dir, `${host}.in`)} > ${join(dir, `${host}.out`)}`], { timeoutMs: 90_000 })));
    const sha = async (file: string): Promise<string> => createHash('sha256').update(await readFile(file)).digest('hex');
    for (const [i, host] of sides.entries()) {
      const run = runs[i]!;
      assert.equal(run.code, 0, `${host}: ${run.stderr}`);
      const connected = JSON.parse(run.stderr.split('\n').find((l) => l.includes('"event":"connected"')) ?? '{}') as Record<string, unknown>;
      assert.equal(connected['path'], 'direct-udp', run.stderr);
      assert.equal(connected['peer'], ids[other(host)]);
      assert.equal(connected['remote'], mapped[other(host)]);
      assert.equal(await sha(join(dir, `${host}.out`)), await sha(join(dir, `${other(host)}.in`)), `${other(host)} -> ${host} bytes differ`);
    }
  });
});
