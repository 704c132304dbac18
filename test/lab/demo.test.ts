/**
 * README's first command, `natpunch demo`: a lab, `natpunch serve`, and two peers behind real NATs
 * exchanging a greeting. The default pair connects directly; a pair with no direct path (both
 * NATs symmetric with random ports) connects through the relay `natpunch serve` runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { skipUnlessLab } from '../support/lab.js';
import { natpunch } from '../support/cli.js';

function demo(...args: string[]): Promise<{ code: number | null; output: string }> {
  const [node, ...argv] = natpunch('demo', ...args);
  return new Promise((resolve) => {
    // A safety net: the demo ends in about 15 s, or says why it could not.
    execFile(node!, argv, { timeout: 120_000, killSignal: 'SIGINT' }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, output: stdout + stderr });
    });
  });
}

test('natpunch demo: two peers behind different NATs connect directly and greet each other', { timeout: 180_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  const { code, output } = await demo();
  assert.equal(code, 0, output);
  // The default pair, port-restricted × eim-random-port, needs both sides to punch (no reversal).
  assert.match(output, /a1: connected — path direct-udp, technique udp-hole-punch/);
  assert.match(output, /a1 received: hello from b1/);
  assert.match(output, /b1 received: hello from a1/);
  assert.match(output, /the lab is gone again/);
});

test('natpunch demo --a symmetric-random --b symmetric-random: no direct path, so the relay', { timeout: 180_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  const { code, output } = await demo('--a', 'symmetric-random', '--b', 'symmetric-random');
  assert.equal(code, 0, output);
  assert.match(output, /a1: connected — path relay, technique turn-udp/);
  assert.match(output, /b1 received: hello from a1/);
});
