import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { CLI } from '../support/cli.js';

/**
 * Ctrl-C while the commands are still loading (a few hundred ms after starting natpunch) is
 * answered like a Ctrl-C later on: one line saying it was interrupted (the JSON error event under
 * --json), exit 130. Node's default handler would have exited 130 without a word.
 */

const PRELOAD = pathToFileURL(fileURLToPath(new URL('../support/interrupt-at-start.js', import.meta.url))).href;

function interruptedAtStart(...args: string[]): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', PRELOAD, CLI, ...args], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, signal: error?.signal ?? null, stdout, stderr });
    });
  });
}

for (const command of ['id', 'listen', 'check']) {
  test(`Ctrl-C while natpunch ${command} is still loading: "interrupted (SIGINT)", exit 130`, { timeout: 90_000 }, async () => {
    const result = await interruptedAtStart(command, '--key', '/nonexistent/never-read');
    assert.equal(result.signal, null, `killed by ${result.signal}: Node's default handler ran`);
    assert.equal(result.code, 130, result.stderr);
    assert.equal(result.stderr, 'natpunch: interrupted (SIGINT)\n');
    assert.equal(result.stdout, '');
  });
}

test('Ctrl-C while loading, under --json: the error event, exit 130', { timeout: 90_000 }, async () => {
  const result = await interruptedAtStart('listen', '--json', '--server', 'ws://127.0.0.1:9/');
  assert.equal(result.code, 130, result.stderr);
  assert.deepEqual(JSON.parse(result.stderr), { event: 'error', code: 'ERR_ABORTED', message: 'interrupted (SIGINT)' });
});
