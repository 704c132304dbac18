import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lab } from '../../src/lab/index.js';
import { CLI, waitForLine } from './cli.js';

export const SERVER_URL = 'ws://198.51.100.10:8080/';
/** The same server over IPv6, in a lab with `ipv6: true` and startServe(lab, ...SERVE_IPV6). */
export const SERVER_URL6 = 'ws://[2001:db8:100::10]:8080/';
/** startServe's extra arguments that make the server dual-stack: its IPv6 address as a further --address. */
export const SERVE_IPV6 = ['--address', '2001:db8:100::10'] as const;

/** Start `natpunch serve` in the lab's server host (STUN with RFC 5780, rendezvous on :8080). */
export async function startServe(lab: Lab, ...extra: string[]): Promise<void> {
  const serve = lab.server.spawn([process.execPath, CLI, 'serve', '--address', '198.51.100.10', '--alt-address', '198.51.100.11', '--http-port', '8080', ...extra]);
  await waitForLine(serve, /ready/);
}

export interface Transfer {
  listener: Record<string, unknown>;
  connector: Record<string, unknown>;
}

/**
 * `natpunch listen --once` in one host, `natpunch connect` from another, `bytes` of random data
 * each way through stdin/stdout; asserts both arrive intact (sha256) and returns each side's
 * "connected" event.
 */
export async function transfer(
  lab: Lab, listenHost: string, connectHost: string, bytes = 1 << 20, extra: string[] = [],
  servers: { listen?: string; connect?: string } = {},
): Promise<Transfer> {
  const dir = await mkdtemp(join(tmpdir(), 'natpunch-xfer-'));
  try {
    const files = { inL: join(dir, 'in-l'), outL: join(dir, 'out-l'), inC: join(dir, 'in-c'), outC: join(dir, 'out-c'), errL: join(dir, 'err-l') };
    await writeFile(files.inL, randomBytes(bytes));
    await writeFile(files.inC, randomBytes(bytes));
    const listen = lab.hosts[listenHost]!.spawn(['sh', '-c',
      `exec "${process.execPath}" "${CLI}" listen --server '${servers.listen ?? SERVER_URL}' --key ${join(dir, 'key-l')} --once --json < ${files.inL} > ${files.outL}`]);
    const readyLine = await waitForLine(listen, /"event":"ready"/);
    const id = (JSON.parse(readyLine) as { id: string }).id;
    const listenerConnected = waitForLine(listen, /"event":"(connected|error)"/, 60_000);
    listenerConnected.catch(() => undefined); // awaited below; a failed connect must not leave it unhandled
    let listenOutput = '';
    listen.stderr?.on('data', (chunk: Buffer) => { listenOutput += chunk.toString(); });
    const exited = new Promise<number | null>((resolve, reject) => {
      // A safety net with the listener's own words, not a synchronisation: it exits once both
      // directions have ended, or fails with an error of its own well before this.
      const timer = setTimeout(() => reject(new Error(`listen --once still running 90 s after connect was started; its stderr:\n${listenOutput}`)), 90_000);
      listen.once('exit', (code) => { clearTimeout(timer); resolve(code); });
    });
    exited.catch(() => undefined);
    const connect = await lab.hosts[connectHost]!.exec(['sh', '-c',
      `exec "${process.execPath}" "${CLI}" connect ${id} --server '${servers.connect ?? SERVER_URL}' --key ${join(dir, 'key-c')} --json ${extra.join(' ')} < ${files.inC} > ${files.outC}`], { timeoutMs: 120_000 });
    assert.equal(connect.code, 0, `connect failed: ${connect.stderr}`);
    const listener = JSON.parse(await listenerConnected) as Record<string, unknown>;
    assert.equal(await exited, 0, `listen --once did not exit 0; its stderr:\n${listenOutput}`);
    const connector = JSON.parse(connect.stderr.split('\n').find((l) => l.includes('"event":"connected"')) ?? '{}') as Record<string, unknown>;
    const sha = async (f: string): Promise<string> => createHash('sha256').update(await readFile(f)).digest('hex');
    assert.equal(await sha(files.outC), await sha(files.inL), 'listener -> connector bytes differ');
    assert.equal(await sha(files.outL), await sha(files.inC), 'connector -> listener bytes differ');
    return { listener, connector };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
