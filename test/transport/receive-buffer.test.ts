import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ReceiveBuffer } from '../../src/transport/receive-buffer.js';

describe('ReceiveBuffer', () => {
  it('keeps a copy: the inserted bytes may be overwritten (a reused receive batch) without changing what the reader gets', () => {
    const buffer = new ReceiveBuffer();
    const slab = Buffer.from('hello world');
    buffer.insert(6, slab.subarray(6)); // out of order: held
    slab.fill(0x2a);
    buffer.insert(0, Buffer.from('hello '));
    assert.equal(Buffer.from(buffer.takeContiguous(1 << 20)!).toString(), 'hello world');
  });

  it('hands pieces that arrived in order over as one view of its storage, and joins the others with a copy', () => {
    const buffer = new ReceiveBuffer();
    buffer.insert(0, Buffer.from('ab'));
    buffer.insert(2, Buffer.from('cd'));
    const inOrder = buffer.takeContiguous(100)!;
    assert.equal(Buffer.from(inOrder).toString(), 'abcd');
    buffer.insert(6, Buffer.from('gh')); // stored before 'ef': not next to it
    buffer.insert(4, Buffer.from('ef'));
    const joined = buffer.takeContiguous(100)!;
    assert.equal(Buffer.from(joined).toString(), 'efgh');
    assert.equal(buffer.takeContiguous(100), undefined);
    // A view of a 256 KiB arena chunk, not a fresh 4-byte join; the out-of-order pair was joined.
    assert.equal(inOrder.buffer.byteLength, 256 * 1024);
    assert.notEqual(joined.buffer, inOrder.buffer);
  });

  it('stores only never-seen bytes, across chunk boundaries and for a piece larger than a chunk', () => {
    const buffer = new ReceiveBuffer();
    const big = Buffer.alloc(300 * 1024, 7);
    buffer.insert(0, big.subarray(0, 1000));
    buffer.insert(500, big); // overlaps: only 1000.. is new
    assert.equal(buffer.bufferedBytes, 500 + big.length);
    let total = 0;
    for (let piece = buffer.takeContiguous(64 * 1024); piece !== undefined; piece = buffer.takeContiguous(64 * 1024)) {
      assert.ok(piece.every((b) => b === 7));
      total += piece.length;
    }
    assert.equal(total, 500 + big.length);
    assert.equal(buffer.nextOffset, total);
  });
});
