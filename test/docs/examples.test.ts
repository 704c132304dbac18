import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProcessOutput, stopProcess } from '../support/process.js';

/** Compiled examples: this file runs from dist/test/docs/, they from dist/examples/. */
const examples = fileURLToPath(new URL('../../examples/', import.meta.url));

/**
 * Each program in examples/ (README "Library") runs as a user runs it, `node
 * dist/examples/NAME.js`: it imports 'natpunch' (the package's own entry, by self-reference),
 * starts `natpunch serve` on loopback, and its peers bind to 127.0.0.1. It must exit 0 and print
 * what it is for. A bound per example (far above the 1–3 s each takes) fails a hung one with
 * its output; its process group (the example and its server) is killed after the test.
 */
const CASES: ReadonlyArray<{ name: string; expect: readonly RegExp[] }> = [
  { name: 'hello', expect: [/^alice: connected to bob over (direct-udp|direct-tcp|relay)/m, /^bob: \S+ says "hello bob"$/m, /^alice: bob says "hello alice, this is \S+"$/m] },
  { name: 'send-file', expect: [/^sender: 100% \(4194304 of 4194304 bytes\)$/m, /^receiver: got report\.bin \(4194304 bytes\)$/m, /^receiver: inbox\/report\.bin matches the original$/m] },
  { name: 'forward-port', expect: [/^forwarding 127\.0\.0\.1:\d+ to the service/m, /^client: got "ONE"$/m, /^client: got "TWO"$/m, /^client: got "THREE"$/m] },
  { name: 'path-events', expect: [/^alice: connected over \S+/m, /^bob: connected over \S+/m, /^alice: holds \S+ \(\S+\), active/m, /^alice: echo "ping" over \S+$/m] },
];

/** Bound on one example's run, ms. */
const EXAMPLE_TIMEOUT_MS = 60_000;

for (const c of CASES) {
  test(`examples/${c.name}.ts runs on loopback, exits 0 and prints what it shows`, async (t) => {
    const home = await mkdtemp(join(tmpdir(), 'natpunch-example-home-'));
    t.after(() => rm(home, { recursive: true, force: true }));
    const env: NodeJS.ProcessEnv = { ...process.env, NATPUNCH_HOME: home };
    delete env['NATPUNCH_SERVER']; // each example starts its own server
    // detached: the example leads a process group, so stopping it also stops its `natpunch serve`.
    const child = spawn(process.execPath, [join(examples, `${c.name}.js`)], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const output = new ProcessOutput(child, `examples/${c.name}`);
    t.after(() => stopProcess(child));
    const text = await output.ended(EXAMPLE_TIMEOUT_MS);
    assert.equal(output.exit, 'exit 0', `examples/${c.name} ended with ${output.exit}; its output:\n${text}`);
    for (const pattern of c.expect) assert.match(text, pattern, `examples/${c.name}: no line matching ${pattern}; its output:\n${text}`);
  });
}
