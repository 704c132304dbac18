/**
 * A receiver facing a hostile sender: hand-made offers whose paths climb out of the output
 * directory, are absolute, pass through a link planted in it, or exceed its limits are refused
 * before any byte of data, with an ERROR the sender can read, and nothing is written outside.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { receiveFiles, TransferError } from '../../src/transfer/index.js';
import { encodeMessage, PROTOCOL_VERSION, type Entry } from '../../src/transfer/messages.js';
import { MessageReader } from '../../src/transfer/message-reader.js';
import { socketPair, tempDir } from './helpers.js';
import { within } from '../support/wait.js';

/** Offer `entries` by hand to a receiver into `out`; its error, and the ERROR frame the sender got. */
async function offer(t: Parameters<typeof socketPair>[0], out: string, entries: Entry[], options: { maxEntries?: number; maxTotalBytes?: number } = {}): Promise<{ error: TransferError; frame: unknown }> {
  const [raw, b] = await socketPair(t);
  const received = receiveFiles(b, { directory: out, ...options }).then(() => assert.fail('the receiver accepted'), (e: unknown) => e as TransferError);
  raw.write(encodeMessage({ type: 'offer', version: PROTOCOL_VERSION, entries }));
  const frame = await within(new MessageReader(raw as Socket).next(), 'the receiver\'s answer');
  const error = await within(received, 'the receiver refusing');
  assert.ok(error instanceof TransferError, String(error));
  return { error, frame };
}

const file = (path: string, size = 4): Entry => ({ kind: 'file', path, mode: 0o644, size });

const unsafe: Array<[string, RegExp]> = [
  ['../escape', /".." component/],
  ['a/../../escape', /".." component/],
  ['/etc/passwd', /absolute/],
  ['a//b', /empty component/],
  ['a/./b', /"\." component/],
  ['trailing/', /empty component/],
  ['evil\u001b[2Jname', /control character/],
  ['win\\..\\escape', /backslash/],
  ['x.natpunch-partial', /keeps for its temporary files/],
  ['n'.repeat(238), /longer than 237 bytes/],
];

for (const [path, why] of unsafe) {
  test(`an offered path ${JSON.stringify(path.length > 40 ? path.slice(0, 12) + '…' : path)} is refused as unsafe-path, told to the sender`, async (t) => {
    const root = await tempDir(t, 'safety');
    const out = join(root, 'out');
    await mkdir(out);
    const { error, frame } = await offer(t, out, [file('fine.txt'), file(path)]);
    assert.equal(error.reason, 'unsafe-path');
    assert.match(error.message, why);
    assert.deepEqual(frame, { type: 'error', reason: 'unsafe-path', message: error.message });
    assert.deepEqual(await readdir(root), ['out']);
    assert.deepEqual(await readdir(out), []);
  });
}

test('a link planted in the output directory is not followed out of it', async (t) => {
  const root = await tempDir(t, 'safety');
  const out = join(root, 'out');
  const elsewhere = join(root, 'elsewhere');
  await mkdir(out);
  await mkdir(elsewhere);
  await symlink(elsewhere, join(out, 'link'));
  const { error } = await offer(t, out, [file('link/x')]);
  assert.equal(error.reason, 'unsafe-path');
  assert.match(error.message, /"link": it is a symbolic link in .*does not follow links/);
  assert.deepEqual(await readdir(elsewhere), []);
  // A link in place of a temporary file is refused too (it would be written through).
  await symlink(join(elsewhere, 'target'), join(out, '.y.natpunch-partial'));
  const second = await offer(t, out, [file('y')]);
  assert.equal(second.error.reason, 'unsafe-path');
  assert.match(second.error.message, /temporary name .* is not a regular file/);
  assert.deepEqual(await readdir(elsewhere), []);
});

test('entries inside a file, and a path listed twice, are refused', async (t) => {
  const out = await tempDir(t, 'safety');
  assert.match((await offer(t, out, [file('a/b'), file('a')])).error.message, /"a" is a file in the same offer/);
  assert.match((await offer(t, out, [file('a'), file('a')])).error.message, /listed twice/);
  assert.deepEqual(await readdir(out), []);
});

test('offers beyond the receiver\'s limits are refused as limit: entries, bytes, free space', async (t) => {
  const out = await tempDir(t, 'safety');
  const many = Array.from({ length: 11 }, (_, i) => file(`f${i}`));
  const entries = await offer(t, out, many, { maxEntries: 10 });
  assert.equal(entries.error.reason, 'limit');
  assert.match(entries.error.message, /lists 11 entries; this receiver takes at most 10/);
  const bytes = await offer(t, out, [file('big', 2000)], { maxTotalBytes: 1000 });
  assert.match(bytes.error.message, /the offer is 2000 bytes; this receiver takes at most 1000/);
  const space = await offer(t, out, [file('huge', 2 ** 52)]);
  assert.equal(space.error.reason, 'limit');
  assert.match(space.error.message, /needs 4503599627370496 more bytes and .* has \d+ free; make room/);
  assert.deepEqual(await readdir(out), []);
});

test('an OFFER message larger than the receiver takes is refused as limit from its header', async (t) => {
  const out = await tempDir(t, 'safety');
  const [raw, b] = await socketPair(t);
  const received = receiveFiles(b, { directory: out, maxOfferBytes: 100 });
  raw.write(encodeMessage({ type: 'offer', version: PROTOCOL_VERSION, entries: Array.from({ length: 10 }, (_, i) => file(`file-${i}`)) }));
  await assert.rejects(received, (e: TransferError) => e.reason === 'limit' && /^the sender sent a message larger than this side takes \(OFFER: body of 199 bytes, at most 100 allowed\); send fewer files at a time$/.test(e.message));
});

test('a directory where a file of that name exists is refused as exists', async (t) => {
  const out = await tempDir(t, 'safety');
  await writeFile(join(out, 'd'), 'a file');
  const { error } = await offer(t, out, [{ kind: 'directory', path: 'd', mode: 0o755, size: 0 }, file('d/x')]);
  assert.equal(error.reason, 'exists');
  assert.match(error.message, /"d" already exists in .* as a file, where the offer has a directory/);
});

test('a refused offer leaves the directory as it was: the directories made for it are removed', async (t) => {
  const out = await tempDir(t, 'safety');
  await writeFile(join(out, 'taken'), 'mine, and longer than offered');
  const dir = (path: string): Entry => ({ kind: 'directory', path, mode: 0o755, size: 0 });
  const { error } = await offer(t, out, [dir('new'), dir('new/deeper'), file('new/deeper/x'), file('taken')]);
  assert.equal(error.reason, 'exists');
  assert.deepEqual(await readdir(out), ['taken']);
});

test('bytes that are not this protocol (a `connect` pipe) are refused as protocol', async (t) => {
  const out = await tempDir(t, 'safety');
  const [raw, b] = await socketPair(t);
  const received = receiveFiles(b, { directory: out });
  raw.write('hello, is anyone there?\n');
  await assert.rejects(received, (e: TransferError) => e.reason === 'protocol' && /the sender sent a malformed message/.test(e.message));
});
