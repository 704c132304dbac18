/**
 * A sender facing a receiver that breaks the protocol: an answer for the wrong number of files, a
 * prefix longer than the file, a message out of turn, bytes that are no message. Each is a
 * 'protocol' failure the receiver is told about, never a hang or a crash.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { collectEntries, sendFiles, TransferError } from '../../src/transfer/index.js';
import { encodeMessage, type Message } from '../../src/transfer/messages.js';
import { MessageReader } from '../../src/transfer/message-reader.js';
import { socketPair, tempDir } from './helpers.js';

const zeros = new Uint8Array(32);
const answers: Array<[string, (Message | string)[], RegExp]> = [
  ['an answer for another number of files', [{ type: 'accept', resume: [] }], /^the receiver answered for 0 files, the offer has 1$/],
  ['a held prefix longer than the file', [{ type: 'accept', resume: [{ state: 'partial', offset: 5000, prefixHash: zeros }] }], /^the receiver holds 5000 bytes of "f", which has 1000$/],
  ['a complete file of another size', [{ type: 'accept', resume: [{ state: 'complete', offset: 999, prefixHash: zeros }] }], /^the receiver has "f" complete at 999 bytes; it has 1000$/],
  ['a message out of turn', [{ type: 'summary', files: 1, bytes: 1 }], /^the receiver sent SUMMARY in answer to the offer, expected ACCEPT$/],
  ['bytes that are no message', ['HTTP/1.1 400 Bad Request\r\n\r\n'], /^the receiver sent a malformed message/],
];

for (const [what, replies, message] of answers) {
  test(`the sender refuses ${what} as protocol, and says so to the receiver`, async (t) => {
    const dir = await tempDir(t, 'hostile-receiver');
    await writeFile(join(dir, 'f'), Buffer.alloc(1000, 7));
    const [a, raw] = await socketPair(t);
    const { entries } = await collectEntries([join(dir, 'f')]);
    const sent = sendFiles(a, entries).then(() => assert.fail('the sender went on'), (e: unknown) => e as TransferError);
    const reader = new MessageReader(raw as Socket);
    assert.equal((await reader.next())?.type, 'offer');
    for (const reply of replies) raw.write(typeof reply === 'string' ? reply : encodeMessage(reply));
    const error = await sent;
    assert.ok(error instanceof TransferError, String(error));
    assert.equal(error.reason, 'protocol');
    assert.match(error.message, message);
    assert.deepEqual(await reader.next(), { type: 'error', reason: 'protocol', message: error.message });
  });
}
