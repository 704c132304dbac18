/**
 * The receiver's state machine under random conversations (STYLE §11): after an offer, any
 * sequence of messages — files out of order, offsets it never offered, more data than a file
 * has, wrong hashes, DONE too early, stray SUMMARY or ERROR, bytes that are no message, the end
 * of the stream anywhere — settles with a TransferError or a NatpunchError, never another throw
 * or a hang, and leaves nothing under its name that is not a verified, complete file.
 * Seeded, so deterministic; FUZZ_RUNS scales it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, rm, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { NatpunchError } from '../../src/errors.js';
import { receiveFiles } from '../../src/transfer/index.js';
import { encodeMessage, PROTOCOL_VERSION, type Entry, type Message } from '../../src/transfer/messages.js';
import { socketPair, tempDir } from './helpers.js';
import { within } from '../support/wait.js';

const RUNS = Math.ceil(Number(process.env['FUZZ_RUNS'] ?? 2000) / 10);

/** The content every fuzzed file would have if it arrived whole: byte i of file k is (k + i) & 0xff. */
const content = (k: number, size: number): Buffer => Buffer.from(Array.from({ length: size }, (_, i) => (k + i) & 0xff));
const sha = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();

test('random conversations after an offer end in a NatpunchError or a success, and only verified files take a name', async (t) => {
  const root = await tempDir(t, 'receiver-fuzz');
  const sizes = fc.array(fc.nat(40), { minLength: 1, maxLength: 3 });
  const stray = (files: number): fc.Arbitrary<Message | Uint8Array> => fc.oneof(
    fc.record({ type: fc.constant('file' as const), index: fc.nat(files + 1), offset: fc.nat(45) }),
    fc.record({ type: fc.constant('data' as const), bytes: fc.uint8Array({ maxLength: 30 }) }),
    fc.record({ type: fc.constant('file-end' as const), sha256: fc.uint8Array({ minLength: 32, maxLength: 32 }) }),
    fc.constant({ type: 'done' as const }),
    fc.constant({ type: 'summary' as const, files: 1, bytes: 1 }),
    fc.constant({ type: 'error' as const, reason: 'aborted', message: 'bye' }),
    fc.uint8Array({ minLength: 1, maxLength: 12 }),
  );
  // The honest conversation for these files, then cut short, and/or with up to two stray steps put in or put in place of others.
  const conversation = sizes.chain((s) => fc.tuple(
    fc.constant(s),
    fc.option(fc.nat(3 * s.length + 1), { freq: 3 }),
    fc.array(fc.tuple(fc.nat(3 * s.length + 1), stray(s.length), fc.boolean()), { maxLength: 2 }),
  ));
  let run = 0;
  await fc.assert(fc.asyncProperty(conversation, async ([fileSizes, cut, strays]) => {
    const out = join(root, String(run++));
    await mkdir(out);
    const entries: Entry[] = fileSizes.map((size, k) => ({ kind: 'file', path: `f${k}`, mode: 0o644, size }));
    const [raw, b] = await socketPair(t);
    const received = receiveFiles(b, { directory: out }).then(() => 'ok', (error: unknown) => error);
    raw.write(encodeMessage({ type: 'offer', version: PROTOCOL_VERSION, entries }));
    const steps: Array<Message | Uint8Array> = entries.flatMap((entry, k) => {
      const data = content(k, entry.size);
      return [{ type: 'file', index: k, offset: 0 }, { type: 'data', bytes: data }, { type: 'file-end', sha256: sha(data) }] satisfies Message[];
    });
    steps.push({ type: 'done' });
    for (const [at, step, replace] of strays) steps.splice(at % (steps.length + 1), replace ? 1 : 0, step);
    for (const step of cut === null ? steps : steps.slice(0, cut)) raw.write(step instanceof Uint8Array ? step : encodeMessage(step));
    raw.end();
    const outcome = await within(received, 'the receiver settling', { timeoutMs: 10_000 });
    raw.destroy();
    if (outcome !== 'ok' && !NatpunchError.is(outcome)) throw new Error(`threw a non-NatpunchError: ${String(outcome)}`, { cause: outcome });
    for (const name of await readdir(out)) {
      if (name.endsWith('.natpunch-partial')) continue;
      const k = Number(name.slice(1));
      assert.deepEqual(await readFile(join(out, name)), content(k, entries[k]!.size), `${name} took its name but is not the offered file`);
    }
    await rm(out, { recursive: true });
  }), { numRuns: RUNS, seed: 10 });
});
