/**
 * `natpunch send` / `natpunch receive` as tests drive them: a real `natpunch serve` on loopback,
 * the CLI spawned with --json and seen through its events, and trees of files compared by hash.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { natpunch } from './cli.js';
import { eventChild, type EventChild } from './json-events.js';
import { localHost, stopProcess } from './process.js';
import { startServe } from './serve.js';

/** `natpunch serve` on 127.0.0.1/127.0.0.2 with ephemeral ports; its rendezvous URL. Stopped after the test. */
export async function loopbackServe(t: TestContext): Promise<string> {
  const serve = await startServe(localHost, '127.0.0.1', '127.0.0.2', ['--port', '0', '--alt-port', '0', '--http-port', '0', '--no-relay']);
  t.after(() => serve.stop());
  const url = /rendezvous (ws:\/\/\S+?\/)/.exec(serve.output.text)?.[1];
  if (!url) throw new Error(`natpunch serve named no rendezvous URL: ${serve.output.text}`);
  return url;
}

/** The CLI with `args`, its --json events followed; `limitFileBlocks` runs it under `ulimit -f` (512-byte blocks). Killed after the test. */
export function natpunchJson(t: TestContext, name: string, args: string[], options: { limitFileBlocks?: number } = {}): EventChild {
  const argv = natpunch(...args, '--json');
  const child = options.limitFileBlocks === undefined
    ? spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn('sh', ['-c', `ulimit -f ${options.limitFileBlocks} && exec "$0" "$@"`, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => stopProcess(child));
  return eventChild(child, name);
}

/** Start `natpunch receive` and wait until it is registered; its events and peer id. */
export async function startReceive(t: TestContext, url: string, key: string, out: string, extra: string[] = [], options: { limitFileBlocks?: number } = {}): Promise<{ receiver: EventChild; id: string }> {
  const receiver = natpunchJson(t, 'natpunch receive', ['receive', '--server', url, '--key', key, '--out', out, ...extra], options);
  const ready = await receiver.until((e) => e['event'] === 'ready', 'ready', 30_000);
  return { receiver, id: String(ready['id']) };
}

/** Every file under `root` (relative path → sha256 and mode), and every directory (→ 'dir'). */
export async function treeDigest(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string, prefix: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name);
      const rel = prefix ? `${prefix}/${name}` : name;
      const s = await stat(path);
      if (s.isDirectory()) {
        out[rel] = 'dir';
        await walk(path, rel);
      } else {
        out[rel] = `${createHash('sha256').update(await readFile(path)).digest('hex')} ${(s.mode & 0o777).toString(8)}`;
      }
    }
  };
  await walk(root, '');
  return out;
}
