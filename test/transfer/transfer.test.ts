/**
 * sendFiles/receiveFiles end to end over a real loopback TCP stream: trees arrive intact with
 * their modes, interrupted files resume from what the receiver holds (and only when it is a
 * prefix of the sender's file), names already there are refused, and every side reports why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { collectEntries, encodeOffer, receiveFiles, sendFiles, TransferError, type TransferProgress } from '../../src/transfer/index.js';
import { socketPair, tempDir } from './helpers.js';
import { until } from '../support/wait.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function transfer(t: Parameters<typeof socketPair>[0], sources: string[], out: string) {
  const [a, b] = await socketPair(t);
  const { entries } = await collectEntries(sources);
  const sent: TransferProgress[] = [];
  const received: TransferProgress[] = [];
  const [send, receive] = await Promise.allSettled([
    sendFiles(a, entries, { onProgress: (p) => sent.push(p) }),
    receiveFiles(b, { directory: out, onProgress: (p) => received.push(p) }),
  ]);
  return { send, receive, sent, received };
}

test('a file and a directory tree arrive intact, with their modes, empty files and empty directories', async (t) => {
  const src = await tempDir(t, 'src');
  const out = await tempDir(t, 'out');
  const big = randomBytes(3 * 1024 * 1024 + 17);
  await writeFile(join(src, 'big.bin'), big);
  await mkdir(join(src, 'tree', 'sub', 'deeper'), { recursive: true });
  await mkdir(join(src, 'tree', 'empty-dir'));
  await writeFile(join(src, 'tree', 'a.txt'), 'alpha');
  await writeFile(join(src, 'tree', 'sub', 'empty'), '');
  await writeFile(join(src, 'tree', 'sub', 'deeper', 'run.sh'), '#!/bin/sh\n');
  await chmod(join(src, 'tree', 'sub', 'deeper', 'run.sh'), 0o750);
  const { send, receive, received } = await transfer(t, [join(src, 'big.bin'), join(src, 'tree')], out);
  assert.equal(send.status, 'fulfilled', String((send as PromiseRejectedResult).reason));
  assert.equal(receive.status, 'fulfilled', String((receive as PromiseRejectedResult).reason));
  const summary = (send as PromiseFulfilledResult<Awaited<ReturnType<typeof sendFiles>>>).value;
  assert.equal(summary.files, 4);
  assert.equal(summary.directories, 4);
  assert.equal(summary.transferred, big.length + 5 + 10);
  assert.equal(summary.resumed, 0);
  assert.equal(sha(await readFile(join(out, 'big.bin'))), sha(big));
  assert.equal(await readFile(join(out, 'tree', 'a.txt'), 'utf8'), 'alpha');
  assert.equal((await stat(join(out, 'tree', 'sub', 'empty'))).size, 0);
  assert.equal((await stat(join(out, 'tree', 'sub', 'deeper', 'run.sh'))).mode & 0o777, 0o750);
  assert.deepEqual(await readdir(join(out, 'tree', 'empty-dir')), []);
  // No temporary file is left behind.
  assert.deepEqual((await readdir(out)).sort(), ['big.bin', 'tree']);
  assert.equal(received.at(-1)!.bytes, received.at(-1)!.total);
  assert.equal(received.at(-1)!.files, 4);
});

test('an interrupted file resumes from the partial the receiver kept, and only the rest moves', async (t) => {
  const src = await tempDir(t, 'src');
  const out = await tempDir(t, 'out');
  const data = randomBytes(2 * 1024 * 1024);
  await writeFile(join(src, 'f.bin'), data);
  await writeFile(join(out, '.f.bin.natpunch-partial'), data.subarray(0, 1234567));
  const { send, receive } = await transfer(t, [join(src, 'f.bin')], out);
  assert.equal(receive.status, 'fulfilled', String((receive as PromiseRejectedResult).reason));
  const summary = (send as PromiseFulfilledResult<Awaited<ReturnType<typeof sendFiles>>>).value;
  assert.equal(summary.resumed, 1234567);
  assert.equal(summary.transferred, data.length - 1234567);
  assert.equal(sha(await readFile(join(out, 'f.bin'))), sha(data));
  assert.deepEqual(await readdir(out), ['f.bin']);
});

test('a partial that is not a prefix of the file (it changed) is sent again from byte 0', async (t) => {
  const src = await tempDir(t, 'src');
  const out = await tempDir(t, 'out');
  const data = randomBytes(300_000);
  await writeFile(join(src, 'f.bin'), data);
  await writeFile(join(out, '.f.bin.natpunch-partial'), randomBytes(100_000));
  const { send } = await transfer(t, [join(src, 'f.bin')], out);
  const summary = (send as PromiseFulfilledResult<Awaited<ReturnType<typeof sendFiles>>>).value;
  assert.equal(summary.resumed, 0);
  assert.equal(summary.transferred, data.length);
  assert.equal(sha(await readFile(join(out, 'f.bin'))), sha(data));
});

test('a name already in the output directory is refused on both sides, and the file is untouched', async (t) => {
  const src = await tempDir(t, 'src');
  const out = await tempDir(t, 'out');
  await writeFile(join(src, 'notes.txt'), 'new');
  await writeFile(join(out, 'notes.txt'), 'mine');
  const { send, receive } = await transfer(t, [join(src, 'notes.txt')], out);
  assert.equal(receive.status, 'rejected');
  assert.equal(send.status, 'rejected');
  const local = (receive as PromiseRejectedResult).reason as TransferError;
  const remote = (send as PromiseRejectedResult).reason as TransferError;
  assert.ok(local instanceof TransferError);
  assert.equal(local.reason, 'exists');
  assert.equal(local.remote, false);
  assert.match(local.message, /"notes.txt" already exists in .*never overwrites: move it away or receive into another --out DIR/);
  assert.equal(remote.reason, 'exists');
  assert.equal(remote.remote, true);
  assert.match(remote.message, /^the receiver reports: "notes.txt" already exists/);
  assert.equal(await readFile(join(out, 'notes.txt'), 'utf8'), 'mine');
});

test('the sender refuses two arguments with the same base name, and a missing file, before connecting', async (t) => {
  const src = await tempDir(t, 'src');
  await mkdir(join(src, 'x'));
  await writeFile(join(src, 'a'), '1');
  await writeFile(join(src, 'x', 'a'), '2');
  await assert.rejects(collectEntries([join(src, 'a'), join(src, 'x', 'a')]), (e: TransferError) => e.reason === 'read-failed' && /would both arrive as "a"/.test(e.message));
  await assert.rejects(collectEntries([join(src, 'nope')]), (e: TransferError) => e.reason === 'read-failed' && /nope: no such file or directory; check the path$/.test(e.message));
});

test('a tree sent again after an interruption: files already in place are confirmed by hash, the partial one resumes, the rest moves', async (t) => {
  const src = await tempDir(t, 'src');
  const out = await tempDir(t, 'out');
  await mkdir(join(src, 'tree'));
  const files = [randomBytes(200_000), randomBytes(300_000), randomBytes(400_000)];
  for (const [i, data] of files.entries()) await writeFile(join(src, 'tree', `f${i}`), data);
  // As an interrupted first run leaves it: f0 complete, f1 half there, f2 not started.
  await mkdir(join(out, 'tree'));
  await writeFile(join(out, 'tree', 'f0'), files[0]!);
  await writeFile(join(out, 'tree', '.f1.natpunch-partial'), files[1]!.subarray(0, 150_000));
  const { send, receive } = await transfer(t, [join(src, 'tree')], out);
  assert.equal(receive.status, 'fulfilled', String((receive as PromiseRejectedResult).reason));
  const summary = (send as PromiseFulfilledResult<Awaited<ReturnType<typeof sendFiles>>>).value;
  assert.equal(summary.files, 3);
  assert.equal(summary.resumed, 200_000 + 150_000);
  assert.equal(summary.transferred, 150_000 + 400_000);
  for (const [i, data] of files.entries()) assert.equal(sha(await readFile(join(out, 'tree', `f${i}`))), sha(data));
  assert.deepEqual((await readdir(join(out, 'tree'))).sort(), ['f0', 'f1', 'f2']);
  // And once more: everything is in place; nothing moves, nothing is rewritten.
  const before = (await stat(join(out, 'tree', 'f2'))).mtimeMs;
  const again = await transfer(t, [join(src, 'tree')], out);
  const second = (again.send as PromiseFulfilledResult<Awaited<ReturnType<typeof sendFiles>>>).value;
  assert.equal(second.transferred, 0);
  assert.equal(second.resumed, 900_000);
  assert.equal((await stat(join(out, 'tree', 'f2'))).mtimeMs, before);
});

test('a name in place with the same size but other bytes is refused by the sender before anything moves', async (t) => {
  const src = await tempDir(t, 'src');
  const out = await tempDir(t, 'out');
  await writeFile(join(src, 'a.bin'), randomBytes(1000));
  await writeFile(join(src, 'b.bin'), randomBytes(1000));
  const theirs = randomBytes(1000);
  await writeFile(join(out, 'b.bin'), theirs);
  const { send, receive } = await transfer(t, [join(src, 'a.bin'), join(src, 'b.bin')], out);
  const local = (send as PromiseRejectedResult).reason as TransferError;
  const remote = (receive as PromiseRejectedResult).reason as TransferError;
  assert.equal(local.reason, 'exists');
  assert.match(local.message, /^"b.bin" already exists at the receiver with other content; natpunch never overwrites/);
  assert.equal(remote.reason, 'exists');
  assert.match(remote.message, /^the sender reports: "b.bin" already exists at the receiver/);
  assert.deepEqual(await readdir(out), ['b.bin']);
  assert.equal(sha(await readFile(join(out, 'b.bin'))), sha(theirs));
});

test('two transfers into the same directory at once: the second to name a file being written is refused as busy', async (t) => {
  const src = await tempDir(t, 'src');
  const out = await tempDir(t, 'out');
  await writeFile(join(src, 'same.bin'), randomBytes(64 * 1024));
  const inProgress = new Set<string>();
  const [a1, b1] = await socketPair(t);
  const [a2, b2] = await socketPair(t);
  const { entries } = await collectEntries([join(src, 'same.bin')]);
  // The first receiver holds the name from its offer on; it is given no data until the second has been refused.
  const first = receiveFiles(b1, { directory: out, inProgress });
  a1.write(encodeOffer(entries));
  await until(() => inProgress.size === 1, 'the first transfer claiming its name');
  const [send2, receive2] = await Promise.allSettled([sendFiles(a2, entries), receiveFiles(b2, { directory: out, inProgress })]);
  assert.equal((receive2 as PromiseRejectedResult).reason.reason, 'busy');
  assert.match((send2 as PromiseRejectedResult).reason.message, /^the receiver reports: "same.bin" is being received from another peer right now; send again once that transfer ends$/);
  a1.destroy();
  await assert.rejects(first);
  assert.equal(inProgress.size, 0, 'names are released when a transfer ends');
});
