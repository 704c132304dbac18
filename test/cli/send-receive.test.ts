/**
 * `natpunch send` and `natpunch receive` through a real `natpunch serve` on loopback: 32 MiB and
 * a tree arrive intact with progress events; a sender killed past half and started again moves
 * only the rest; a receiver that cannot write says so on both sides; usage errors exit 2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createPeer, generateIdentity } from '../../src/index.js';
import { encodeMessage, PROTOCOL_VERSION } from '../../src/transfer/messages.js';
import { MessageReader } from '../../src/transfer/message-reader.js';
import { tempDir } from '../transfer/helpers.js';
import { loopbackServe, natpunchJson, startReceive, treeDigest } from '../support/send-receive.js';
import type { JsonEvent } from '../support/json-events.js';

const MiB = 1024 * 1024;
const progressOf = (events: JsonEvent[]): JsonEvent[] => events.filter((e) => e['event'] === 'progress');

/** Progress events rise to the total and come at most about four a second (plus the final one). */
function assertProgress(events: JsonEvent[], total: number, seconds: number): void {
  const progress = progressOf(events);
  assert.ok(progress.length >= 2, `progress events: ${progress.length}`);
  for (let i = 1; i < progress.length; i++) assert.ok(Number(progress[i]!['bytes']) >= Number(progress[i - 1]!['bytes']), 'progress never goes back');
  assert.equal(progress.at(-1)!['bytes'], total);
  assert.equal(progress.at(-1)!['total'], total);
  assert.ok(progress.length <= 4 * seconds + 6, `${progress.length} progress events in ${seconds.toFixed(1)} s`);
}

test('32 MiB and a directory tree arrive intact, with progress events on both sides', { timeout: 180_000 }, async (t) => {
  const url = await loopbackServe(t);
  const dir = await tempDir(t, 'send-receive');
  const src = join(dir, 'src');
  const out = join(dir, 'out');
  await mkdir(join(src, 'tree', 'sub', 'empty'), { recursive: true });
  await mkdir(out);
  await writeFile(join(src, 'big.bin'), randomBytes(32 * MiB));
  for (let i = 0; i < 20; i++) await writeFile(join(src, 'tree', i % 2 ? 'sub' : '', `f${i}.txt`), randomBytes(i * 1000));
  await writeFile(join(src, 'tree', 'sub', 'tool'), '#!/bin/sh\necho hi\n');
  await chmod(join(src, 'tree', 'sub', 'tool'), 0o755);
  const { receiver, id } = await startReceive(t, url, join(dir, 'key-r'), out, ['--once']);
  const started = Date.now();
  const sender = natpunchJson(t, 'natpunch send', ['send', id, join(src, 'big.bin'), join(src, 'tree'), '--server', url, '--key', join(dir, 'key-s')]);
  assert.equal(await sender.exited(150_000), 0, sender.stderr());
  assert.equal(await receiver.exited(30_000), 0, receiver.stderr());
  const seconds = (Date.now() - started) / 1000;
  assert.deepEqual(await treeDigest(out), await treeDigest(src));
  const total = 32 * MiB + [...Array(20).keys()].reduce((sum, i) => sum + i * 1000, 0) + '#!/bin/sh\necho hi\n'.length;
  for (const side of [sender, receiver]) {
    assert.ok(side.events.some((e) => e['event'] === 'connected' && e['path'] === 'direct-udp'), side.stderr());
    assertProgress(side.events, total, seconds);
    const done = side.events.find((e) => e['event'] === 'done')!;
    assert.deepEqual({ files: done['files'], bytes: done['bytes'], transferred: done['transferred'], resumed: done['resumed'] }, { files: 22, bytes: total, transferred: total, resumed: 0 });
  }
});

test('a sender killed past half and started again sends only the rest; the file is intact', { timeout: 180_000 }, async (t) => {
  const url = await loopbackServe(t);
  const dir = await tempDir(t, 'resume');
  const out = join(dir, 'out');
  await mkdir(out);
  const file = join(dir, 'big.bin');
  await writeFile(file, randomBytes(32 * MiB));
  const { receiver, id } = await startReceive(t, url, join(dir, 'key-r'), out);
  const sendArgs = ['send', id, file, '--server', url, '--key', join(dir, 'key-s')];
  // Paced, so that "past half" is a moment a test can see (8 MiB/s: about 4 s in all).
  const first = natpunchJson(t, 'the first natpunch send', [...sendArgs, '--limit-rate', '8M']);
  await first.until((e) => e['event'] === 'progress' && Number(e['bytes']) > 16 * MiB, 'progress past half', 60_000);
  first.child.kill('SIGKILL');
  await first.exited(10_000);
  const partial = join(out, '.big.bin.natpunch-partial');
  const second = natpunchJson(t, 'the second natpunch send', sendArgs);
  assert.equal(await second.exited(120_000), 0, second.stderr());
  const done = second.events.find((e) => e['event'] === 'done')!;
  t.diagnostic(`second run: ${done['resumed']} bytes resumed, ${done['transferred']} sent`);
  // What the receiver held from the first run, no more, no less, was not sent again.
  assert.equal(Number(done['resumed']) + Number(done['transferred']), 32 * MiB);
  assert.ok(Number(done['resumed']) >= 10 * MiB, `resumed ${done['resumed']}`);
  assert.ok(Number(done['transferred']) <= 22 * MiB, `transferred ${done['transferred']}`);
  assert.equal(progressOf(second.events)[0]!['bytes'], done['resumed'], 'progress starts at what was there');
  assert.deepEqual(second.events.find((e) => e['event'] === 'checking'), { event: 'checking', file: 'big.bin', bytes: done['resumed'] });
  assert.deepEqual(await treeDigest(out), { 'big.bin': (await treeDigest(dir))['big.bin'] });
  await assert.rejects(stat(partial), /ENOENT/);
  // The receiver reported the first transfer's end (its connection replaced by the second's), then the second's success.
  const receiverDone = await receiver.until((e) => e['event'] === 'done', 'done');
  assert.equal(receiverDone['resumed'], done['resumed']);
  assert.ok(receiver.events.some((e) => e['event'] === 'error' && /closed before the transfer ended/.test(String(e['message']))), receiver.stderr());
  receiver.child.kill('SIGTERM');
  assert.equal(await receiver.exited(15_000), 143, receiver.stderr()); // 128 + SIGTERM, as listen
});

test('a directory tree killed past half and sent again: files in place are confirmed, the rest moves, the tree is intact', { timeout: 180_000 }, async (t) => {
  const url = await loopbackServe(t);
  const dir = await tempDir(t, 'resume-tree');
  const src = join(dir, 'tree');
  const out = join(dir, 'out');
  await mkdir(join(src, 'sub'), { recursive: true });
  await mkdir(out);
  for (let i = 0; i < 8; i++) await writeFile(join(src, i < 4 ? '' : 'sub', `part-${i}`), randomBytes(2 * MiB));
  const { receiver, id } = await startReceive(t, url, join(dir, 'key-r'), out);
  const sendArgs = ['send', id, src, '--server', url, '--key', join(dir, 'key-s')];
  const first = natpunchJson(t, 'the first natpunch send', [...sendArgs, '--limit-rate', '8M']);
  await first.until((e) => e['event'] === 'progress' && Number(e['bytes']) > 8 * MiB, 'progress past half', 60_000);
  first.child.kill('SIGKILL');
  await first.exited(10_000);
  const second = natpunchJson(t, 'the second natpunch send', sendArgs);
  assert.equal(await second.exited(120_000), 0, second.stderr());
  const done = second.events.find((e) => e['event'] === 'done')!;
  t.diagnostic(`second run: ${done['resumed']} bytes resumed, ${done['transferred']} sent`);
  assert.equal(done['files'], 8);
  assert.equal(Number(done['resumed']) + Number(done['transferred']), 16 * MiB);
  assert.ok(Number(done['resumed']) >= 5 * MiB, `resumed ${done['resumed']}`);
  assert.deepEqual(await treeDigest(join(out, 'tree')), await treeDigest(src));
  receiver.child.kill('SIGTERM');
  assert.equal(await receiver.exited(15_000), 143, receiver.stderr()); // 128 + SIGTERM, as listen
});

test('a receiver that cannot write (file size limit) says so, and so does the sender; what arrived is kept', { timeout: 120_000 }, async (t) => {
  const url = await loopbackServe(t);
  const dir = await tempDir(t, 'write-fails');
  const out = join(dir, 'out');
  await mkdir(out);
  await writeFile(join(dir, 'f.bin'), randomBytes(4 * MiB));
  // ulimit -f 2048: no file beyond 1 MiB (the key file and the rest are far smaller).
  const { receiver, id } = await startReceive(t, url, join(dir, 'key-r'), out, ['--once'], { limitFileBlocks: 2048 });
  const sender = natpunchJson(t, 'natpunch send', ['send', id, join(dir, 'f.bin'), '--server', url, '--key', join(dir, 'key-s')]);
  assert.equal(await receiver.exited(60_000), 1, receiver.stderr());
  assert.equal(await sender.exited(60_000), 1, sender.stderr());
  const local = receiver.events.find((e) => e['event'] === 'error')!;
  assert.equal(local['code'], 'ERR_TRANSFER');
  assert.match(String(local['message']), /^could not write "f.bin" in .*: EFBIG: file too large.*; make room \(or fix the directory\) and send again: what arrived is kept and resumed$/);
  const remote = sender.events.find((e) => e['event'] === 'error')!;
  assert.match(String(remote['message']), /^the receiver reports: could not write "f.bin"/);
  assert.deepEqual(await readdir(out), ['.f.bin.natpunch-partial']);
  assert.equal((await stat(join(out, '.f.bin.natpunch-partial'))).size, 1 * MiB);
});

test('receive refuses a hand-made offer whose path climbs out of --out, tells the sender why, and writes nothing', { timeout: 120_000 }, async (t) => {
  const url = await loopbackServe(t);
  const dir = await tempDir(t, 'traversal');
  const out = join(dir, 'out');
  await mkdir(out);
  const { receiver, id } = await startReceive(t, url, join(dir, 'key-r'), out, ['--once']);
  // A peer of our own, speaking the protocol by hand: the offer a hostile sender would make.
  const peer = await createPeer({ server: url, identity: generateIdentity() });
  t.after(() => peer.close());
  const connection = await peer.connect(id);
  connection.write(encodeMessage({ type: 'offer', version: PROTOCOL_VERSION, entries: [
    { kind: 'file', path: 'innocent.txt', mode: 0o644, size: 3 },
    { kind: 'file', path: 'innocent/../../escape.txt', mode: 0o644, size: 3 },
  ] }));
  const answer = await new MessageReader(connection).next();
  assert.deepEqual(answer, { type: 'error', reason: 'unsafe-path', message: 'refused entry "innocent/../../escape.txt": the path has a ".." component' });
  assert.equal(await receiver.exited(30_000), 1, receiver.stderr());
  const error = receiver.events.find((e) => e['event'] === 'error')!;
  assert.equal(error['code'], 'ERR_TRANSFER');
  assert.match(String(error['message']), /refused entry "innocent\/..\/..\/escape.txt"/);
  assert.deepEqual((await readdir(dir)).sort(), ['key-r', 'out']);
  assert.deepEqual(await readdir(out), []);
});

test('send and receive usage errors exit 2 and say what to do', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t, 'usage');
  const id = generateIdentity().peerId;
  const cases: Array<[string[], RegExp]> = [
    [['send'], /give the receiver's PEER_ID .* and at least one FILE/],
    [['send', 'not-an-id', 'x', '--server', 'ws://127.0.0.1:1/'], /"not-an-id" is not a peer id/],
    [['receive'], /--server URL is required/],
    [['receive', '--server', 'ws://127.0.0.1:1/', '--out', join(dir, 'missing')], /--out .*missing is not a directory; create it first/],
    [['send', '--limit-rate', 'fast', id, 'x', '--server', 'ws://127.0.0.1:1/'], /--limit-rate "fast": expected bytes per second/],
  ];
  for (const command of ['send', 'receive']) {
    const help = natpunchJson(t, `natpunch ${command} --help`, [command, '--help']);
    assert.equal(await help.exited(30_000), 0, help.stderr());
  }
  for (const [args, message] of cases) {
    const child = natpunchJson(t, `natpunch ${args.join(' ')}`, args);
    assert.equal(await child.exited(30_000), 2, `${args.join(' ')}: ${child.stderr()}`);
    // Under --json a usage error is an event too.
    const event = JSON.parse(child.stderr().trim().split('\n').at(-1)!) as { event: string; code: string; message: string };
    assert.deepEqual([event.event, event.code], ['error', 'ERR_USAGE'], child.stderr());
    assert.match(event.message, message);
  }
});

test('Ctrl-C on an idle receive: it says it was interrupted and exits 130, as listen does', { timeout: 120_000 }, async (t) => {
  const url = await loopbackServe(t);
  const dir = await tempDir(t, 'idle');
  const { receiver } = await startReceive(t, url, join(dir, 'key-r'), dir);
  receiver.child.kill('SIGINT');
  assert.equal(await receiver.exited(10_000), 130, receiver.stderr());
  const error = receiver.events.find((e) => e['event'] === 'error');
  assert.match(String(error?.['message']), /interrupted \(SIGINT\)/, receiver.stderr());
});

for (const side of ['sender', 'receiver'] as const) {
  test(`Ctrl-C on the ${side} mid-transfer: the other side exits 1 at once with its aborted error; what arrived is kept`, { timeout: 120_000 }, async (t) => {
    const url = await loopbackServe(t);
    const dir = await tempDir(t, 'abort');
    const out = join(dir, 'out');
    await mkdir(out);
    await writeFile(join(dir, 'f.bin'), randomBytes(8 * MiB));
    const { receiver, id } = await startReceive(t, url, join(dir, 'key-r'), out, ['--once']);
    const sender = natpunchJson(t, 'natpunch send', ['send', id, join(dir, 'f.bin'), '--server', url, '--key', join(dir, 'key-s'), '--limit-rate', '2M']);
    await receiver.until((e) => e['event'] === 'progress' && Number(e['bytes']) > 0, 'progress');
    const [stopped, other] = side === 'sender' ? [sender, receiver] : [receiver, sender];
    const interrupted = Date.now();
    stopped.child.kill('SIGINT');
    assert.equal(await other.exited(10_000), 1, other.stderr());
    const ms = Date.now() - interrupted;
    assert.ok(ms < 1500, `the other side exited ${ms} ms after the ${side} was interrupted`);
    assert.equal(await stopped.exited(10_000), 130, stopped.stderr()); // 128 + SIGINT, as listen and connect
    const error = other.events.find((e) => e['event'] === 'error')!;
    assert.equal(error['code'], 'ERR_TRANSFER');
    assert.equal(error['message'], `the ${side} reports: the ${side} was interrupted (Ctrl-C or SIGTERM); what arrived is kept: sending again resumes`);
    assert.ok((await stat(join(out, '.f.bin.natpunch-partial'))).size > 0);
  });
}
