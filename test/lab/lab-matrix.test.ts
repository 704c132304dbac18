import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipUnlessLab } from '../support/lab.js';
import { CLI } from '../support/cli.js';

/**
 * `natpunch lab matrix` (issue 9, "the matrix as a feature"), on a reduced set as CI runs it:
 * three kinds whose pairs exercise plain punching, prediction on one side and on both, birthday
 * probing, and the relay. Each pair is the real CLI in a lab of its own, so the expectations are the lab's own
 * facts (test/lab/connect-*.test.ts), not the matrix's output read back.
 */
test('natpunch lab matrix --kinds port-restricted,symmetric-seq,symmetric-random --json --html: every pair connects, each the way the lab tests say', { timeout: 300_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  const dir = await mkdtemp(join(tmpdir(), 'natpunch-matrix-test-'));
  try {
    const html = join(dir, 'matrix.html');
    const run = spawnSync(process.execPath, [CLI, 'lab', 'matrix', '--kinds', 'port-restricted,symmetric-seq,symmetric-random', '--json', '--html', html], { encoding: 'utf8', timeout: 280_000 });
    assert.equal(run.status, 0, `exit ${run.status}\n${run.stdout}\n${run.stderr}`);
    const events = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const pairs = events.filter((e) => e.event === 'pair');
    const of = (a: string, b: string): Record<string, unknown> => pairs.find((p) => p.a === a && p.b === b) ?? assert.fail(`no result for ${a} × ${b}: ${run.stdout}`);
    assert.equal(pairs.length, 6);
    for (const pair of pairs) assert.equal(pair.ok, true, JSON.stringify(pair));
    assert.deepEqual([of('port-restricted', 'port-restricted').path, of('port-restricted', 'port-restricted').technique], ['direct-udp', 'udp-hole-punch']);
    assert.deepEqual([of('port-restricted', 'symmetric-seq').path, of('port-restricted', 'symmetric-seq').technique], ['direct-udp', 'udp-prediction']);
    // Both sides predict under --transport auto: UDP's and TCP's flows share the counter, and either may win.
    assert.match(String(of('symmetric-seq', 'symmetric-seq').path), /^direct-/);
    assert.match(String(of('symmetric-seq', 'symmetric-seq').technique), /-prediction$/);
    // Birthday probing (connect-birthday) races the relay: the connection may start on either,
    // and one that starts on the relay moves to the direct path when the probing succeeds.
    // After a relayed start, the connector may learn the direct path from the other side's
    // authenticated data on it before its own checks complete: the path manager then names the
    // path 'rebinding' (src/path/path-manager.ts).
    const birthday = of('port-restricted', 'symmetric-random');
    assert.equal(birthday.path, 'direct-udp', JSON.stringify(birthday));
    if (birthday.startPath === undefined) assert.equal(birthday.technique, 'udp-birthday', JSON.stringify(birthday));
    else assert.match(String(birthday.technique), /^(udp-birthday|rebinding)$/, JSON.stringify(birthday));
    assert.ok(Number(birthday.directMs) >= Number(birthday.ms), JSON.stringify(birthday));
    // Random × random has no direct path within any probe budget: the relay, and it stays there.
    const hopeless = of('symmetric-random', 'symmetric-random');
    assert.equal(hopeless.path, 'relay', JSON.stringify(hopeless));
    assert.equal(hopeless.directMs, undefined);
    // Sequential × random: birthday probing against a sequential NAT sometimes lands (each probe
    // opens the next port, and the random side's 256 sockets may meet one), so the pair ends
    // either on the relay or, after a relayed start, direct by birthday. Both are right.
    const seqRandom = of('symmetric-seq', 'symmetric-random');
    if (seqRandom.path === 'relay') assert.equal(seqRandom.directMs, undefined, JSON.stringify(seqRandom));
    else {
      assert.equal(seqRandom.path, 'direct-udp', JSON.stringify(seqRandom));
      assert.match(String(seqRandom.technique), /^(udp-birthday|rebinding)$/, JSON.stringify(seqRandom));
    }
    // The server's own count of each connection, from the connector's report (natpunch
    // serve's /metrics): the path and technique it was ready on, and the NAT classes the server
    // proved at registration (every one of these NATs filters: "nat").
    for (const pair of pairs) {
      const reported = pair.reported as Record<string, string> | undefined;
      assert.ok(reported, `the server counted no report for ${JSON.stringify(pair)}`);
      const ready = { path: String(pair.startPath ?? pair.path), technique: pair.startPath === undefined ? String(pair.technique) : reported.technique };
      assert.deepEqual(reported, { outcome: 'connected', ...ready, initiatorNat: 'nat', targetNat: 'nat' }, JSON.stringify(pair));
      if (pair.startPath === 'relay') assert.match(reported.technique, /^turn-(udp|tcp|tls)$/, JSON.stringify(pair));
    }
    assert.deepEqual(events.at(-1), { event: 'matrix', pairs: 6, failed: 0, html });
    const page = await readFile(html, 'utf8');
    assert.match(page, /^<!doctype html>/);
    assert.equal(page.match(/<td style/g)?.length, 9); // the full 3 × 3 grid, each unordered pair shown both ways
    assert.match(page, /udp-prediction/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('natpunch lab matrix: an unknown kind or transport is a usage error that names the choices', (t) => {
  if (skipUnlessLab(t)) return;
  const kinds = spawnSync(process.execPath, [CLI, 'lab', 'matrix', '--kinds', 'port-restricted,cone'], { encoding: 'utf8' });
  assert.equal(kinds.status, 2);
  assert.match(kinds.stderr, /unknown kind "cone"; choose among full-cone, /);
  const transport = spawnSync(process.execPath, [CLI, 'lab', 'matrix', '--transport', 'quic'], { encoding: 'utf8' });
  assert.equal(transport.status, 2);
  assert.match(transport.stderr, /--transport "quic": expected one of auto, udp, tcp, relay/);
});
