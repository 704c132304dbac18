import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CLI } from '../support/cli.js';

/**
 * What the CLI loads before it can answer: `natpunch help`, `id`, a command's --help and a typo
 * need none of the stacks the commands run on. Loading them all took about two thirds of a
 * second of CPU (726 modules, 427 of them the Redis client) before anything was printed.
 */

const TRACE = pathToFileURL(fileURLToPath(new URL('../support/module-trace.js', import.meta.url))).href;

/** Stacks that only some commands run, by a module each cannot do without. */
const HEAVY: Record<string, RegExp> = {
  'the Redis client': /\/node_modules\/@redis\//,
  'prom-client': /\/node_modules\/prom-client\//,
  'ws': /\/node_modules\/ws\//,
  'the peer': /\/dist\/src\/peer\/peer\.js$/,
  'the server': /\/dist\/src\/server\/natpunch-server\.js$/,
};

async function modulesLoadedBy(...args: string[]): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'natpunch-startup-'));
  try {
    const trace = join(dir, 'modules');
    const stderr = await new Promise<string>((resolve) => {
      execFile(process.execPath, ['--import', TRACE, CLI, ...args], { timeout: 60_000, env: { ...process.env, NATPUNCH_MODULE_TRACE: trace } }, (_error, _stdout, err) => resolve(err));
    });
    const text = await readFile(trace, 'utf8').catch((error: Error) => assert.fail(`natpunch ${args.join(' ')} left no module trace (${error.message}); it printed: ${stderr}`));
    return text.split('\n').filter(Boolean);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

for (const args of [['help'], ['id', '--key', '/nonexistent/key'], ['listen', '--help'], ['conect']]) {
  test(`natpunch ${args.join(' ')} loads none of the stacks the commands run on`, { timeout: 90_000 }, async () => {
    const modules = await modulesLoadedBy(...args);
    assert.ok(modules.some((url) => url.endsWith('/dist/src/cli/commands.js')), `the trace saw the CLI load: ${modules.length} modules`);
    for (const [stack, pattern] of Object.entries(HEAVY)) {
      assert.deepEqual(modules.filter((url) => pattern.test(url)), [], `${stack} was loaded`);
    }
  });
}
