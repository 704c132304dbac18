/**
 * A paced transfer through the real CLI in the lab, for scenarios where the network changes
 * mid-transfer: `natpunch listen` in b1 and `natpunch connect` from a1, each piping a paced
 * source through natpunch into a measuring sink (paced-stream.ts), with their JSON events.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { withLab, type Lab } from '../../src/lab/index.js';
import { skipUnlessLab } from './lab.js';
import { CLI } from './cli.js';
import { SERVER_URL, startServe } from './peers.js';
import { PACED_STREAM, pacedBytes, type SinkReport } from './paced-stream.js';
import { type EventChild, type JsonEvent, eventChild } from './json-events.js';

/** The longest stall a user may see while the network changes. */
export const MAX_GAP_MS = 2_000;
type LabOptions = Parameters<typeof withLab>[0];

export interface PacedRun {
  listener: EventChild;
  connector: EventChild;
  /** Resolves when both have exited 0 with every byte intact; returns the sinks' reports. */
  finished(): Promise<{ listener: SinkReport; connector: SinkReport }>;
}

/** listen in b1 and connect from a1: `bytes` each way, paced over `seconds`. */
export async function pacedTransfer(lab: Lab, dir: string, connectArgs = '', seconds = 10, bytes = 16 << 20): Promise<PacedRun> {
  const node = process.execPath;
  const side = (who: 'l' | 'c', seed: number, command: string): string =>
    `"${node}" "${PACED_STREAM}" source ${bytes} ${seconds} ${seed} | ${command} | "${node}" "${PACED_STREAM}" sink ${join(dir, `sink-${who}.json`)}`;
  const listener = eventChild(lab.hosts['b1']!.spawn(['sh', '-c',
    side('l', 1, `"${node}" "${CLI}" listen --server ${SERVER_URL} --key ${join(dir, 'key-l')} --once --json`)]), 'listen');
  const id = String((await listener.until((e) => e['event'] === 'ready', 'ready'))['id']);
  const connector = eventChild(lab.hosts['a1']!.spawn(['sh', '-c',
    side('c', 2, `"${node}" "${CLI}" connect ${id} --server ${SERVER_URL} --key ${join(dir, 'key-c')} --json ${connectArgs}`)]), 'connect');
  await Promise.all([connector.until((e) => e['event'] === 'connected', 'connected'), listener.until((e) => e['event'] === 'connected', 'connected')]);
  return {
    listener, connector,
    finished: async () => {
      const [lc, cc] = await Promise.all([listener.exited(120_000), connector.exited(120_000)]);
      assert.equal(cc, 0, `connect did not exit 0; its stderr:\n${connector.stderr()}`);
      assert.equal(lc, 0, `listen did not exit 0; its stderr:\n${listener.stderr()}`);
      const report = async (who: string): Promise<SinkReport> => JSON.parse(await readFile(join(dir, `sink-${who}.json`), 'utf8')) as SinkReport;
      const [l, c] = [await report('l'), await report('c')];
      const digest = (seed: number): string => createHash('sha256').update(pacedBytes(bytes, seed)).digest('hex');
      assert.equal(l.bytes, bytes, 'bytes the listener received');
      assert.equal(l.sha256, digest(2), 'connector -> listener bytes differ');
      assert.equal(c.bytes, bytes, 'bytes the connector received');
      assert.equal(c.sha256, digest(1), 'listener -> connector bytes differ');
      return { listener: l, connector: c };
    },
  };
}

/** A lab with `natpunch serve` running and a scratch directory, both gone afterwards. */
export async function inLab(t: TestContext, routers: LabOptions, run: (lab: Lab, dir: string) => Promise<void>): Promise<void> {
  if (skipUnlessLab(t)) return;
  const dir = await mkdtemp(join(tmpdir(), 'natpunch-paced-'));
  try {
    await withLab(routers, async (lab) => {
      await startServe(lab);
      await run(lab, dir);
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const pathEvents = (child: EventChild): JsonEvent[] => child.events.filter((e) => e['event'] === 'path');
