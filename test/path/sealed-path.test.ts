import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameKind, SEALED_AD, SEALED_OVERHEAD } from '../../src/path/frame.js';
import type { RawPath } from '../../src/path/raw-path.js';
import { SealedPath } from '../../src/path/sealed-path.js';
import type { SecureSession } from '../../src/secure/index.js';
import { assertNoiseError, establishedSessions, text } from '../secure/helpers.js';

interface Capture extends RawPath {
  sent: Array<{ via: 'send' | 'sendWithHeadroom' | 'sendBatch'; buffer: Uint8Array }>;
}

/** A raw path that keeps what it is given; with `headroom`, it offers sendWithHeadroom (and sendBatch with `batch`). */
function capture(options: { headroom?: number; batch?: boolean; maxPayload?: number } = {}): Capture {
  const sent: Capture['sent'] = [];
  const path: Capture = {
    kind: 'direct-udp', remote: '192.0.2.1:1', technique: 'test', open: true, maxPayload: options.maxPayload ?? 1195, sent,
    send: (buffer) => { sent.push({ via: 'send', buffer }); },
    onDatagram: () => undefined,
    onClose: () => undefined,
    close: () => undefined,
  };
  if (options.headroom !== undefined) {
    Object.assign(path, {
      headroom: options.headroom,
      sendWithHeadroom: (buffer: Uint8Array) => { sent.push({ via: 'sendWithHeadroom', buffer }); },
    });
    if (options.batch) Object.assign(path, { sendBatch: (buffers: Uint8Array[]) => { for (const buffer of buffers) sent.push({ via: 'sendBatch', buffer }); } });
  }
  return path;
}

/** What the peer's path manager does with a SEALED frame. */
function openFrame(peer: SecureSession, frame: Uint8Array): Uint8Array {
  assert.equal(frame[0], FrameKind.Sealed);
  return peer.datagram.open(frame.subarray(1), SEALED_AD);
}

const counterOf = (frame: Uint8Array): number => Number(Buffer.from(frame).readBigUInt64LE(1));

describe('a sealed path (SealedPath)', () => {
  it('seals a datagram into a SEALED frame the peer opens', () => {
    const [a, b] = establishedSessions();
    const raw = capture();
    new SealedPath(raw, a.datagram).send(text('hello'));
    assert.equal(raw.sent.length, 1);
    const { via, buffer } = raw.sent[0]!;
    assert.equal(via, 'send');
    assert.equal(buffer.length, 5 + SEALED_OVERHEAD);
    assert.equal(counterOf(buffer), 0);
    assert.deepEqual(openFrame(b, buffer), text('hello'));
  });

  it('gives the stream the raw path payload less the 25 bytes of sealing', () => {
    const [a] = establishedSessions();
    assert.equal(new SealedPath(capture({ maxPayload: 1195 }), a.datagram).maxPayload, 1170);
  });

  it('counts every byte it hands the raw path', () => {
    const [a] = establishedSessions();
    let counted = 0;
    const raw = capture({ headroom: 5 });
    const sealed = new SealedPath(raw, a.datagram, (bytes) => { counted += bytes; });
    sealed.send(new Uint8Array(100));
    sealed.send(new Uint8Array(7));
    assert.equal(counted, raw.sent.reduce((sum, { buffer }) => sum + buffer.length, 0));
  });

  for (const [part, index] of [['kind', 0], ['counter', 3], ['ciphertext', 10], ['tag', -1]] as const) {
    it(`refuses a frame whose ${part} was changed`, () => {
      const [a, b] = establishedSessions();
      const raw = capture();
      new SealedPath(raw, a.datagram).send(text('payload'));
      const frame = raw.sent[0]!.buffer;
      const tampered = frame.slice();
      const at = index < 0 ? frame.length + index : index;
      tampered[at] = tampered[at]! ^ 0x01;
      if (part === 'kind') {
        // The kind byte is authenticated as associated data: even read as SEALED with the new
        // kind as AD, the frame does not open.
        assertNoiseError(() => b.datagram.open(tampered.subarray(1), tampered.subarray(0, 1)), 'decrypt-failed');
        assert.notEqual(tampered[0], FrameKind.Sealed);
      } else {
        assertNoiseError(() => openFrame(b, tampered), 'decrypt-failed');
      }
      assert.deepEqual(openFrame(b, frame), text('payload'), 'the original still opens: the forgery moved nothing');
    });
  }

  it('refuses a replayed frame', () => {
    const [a, b] = establishedSessions();
    const raw = capture();
    new SealedPath(raw, a.datagram).send(text('once'));
    openFrame(b, raw.sent[0]!.buffer);
    assertNoiseError(() => openFrame(b, raw.sent[0]!.buffer), 'replayed', /already received/);
  });

  it('never repeats a counter across several sealed paths of one session', () => {
    const [a, b] = establishedSessions();
    const raws = [capture(), capture({ headroom: 5 }), capture({ headroom: 2, batch: true })];
    const paths = raws.map((raw) => new SealedPath(raw, a.datagram));
    for (let i = 0; i < 30; i++) {
      const path = paths[i % 3]!;
      if (i % 5 === 4 && path.sendBatch) path.sendBatch([text(`${i}`), text(`${i}b`)]);
      else path.send(text(`${i}`));
    }
    const counters: number[] = [];
    for (const [index, raw] of raws.entries()) {
      const headroom = [0, 5, 2][index]!;
      for (const { buffer } of raw.sent) {
        const frame = buffer.subarray(headroom);
        counters.push(counterOf(frame));
        openFrame(b, frame);
      }
    }
    assert.equal(new Set(counters).size, counters.length, 'no counter twice');
    assert.deepEqual([...counters].sort((x, y) => x - y), counters.map((_, i) => i));
  });

  it('leaves the raw path its headroom in front of the frame, for sendWithHeadroom', () => {
    const [a, b] = establishedSessions();
    const raw = capture({ headroom: 5 });
    const sealed = new SealedPath(raw, a.datagram);
    sealed.send(text('zero copy'));
    const { via, buffer } = raw.sent[0]!;
    assert.equal(via, 'sendWithHeadroom');
    assert.equal(buffer.length, 5 + 9 + SEALED_OVERHEAD);
    assert.equal(buffer[5], FrameKind.Sealed);
    assert.deepEqual(openFrame(b, buffer.subarray(5)), text('zero copy'));
  });

  it('batches through the raw path, each buffer laid out for sendWithHeadroom', () => {
    const [a, b] = establishedSessions();
    const raw = capture({ headroom: 2, batch: true });
    const sealed = new SealedPath(raw, a.datagram);
    assert.ok(sealed.sendBatch);
    sealed.sendBatch([text('one'), text('two'), text('three')]);
    assert.deepEqual(raw.sent.map(({ via }) => via), ['sendBatch', 'sendBatch', 'sendBatch']);
    assert.deepEqual(raw.sent.map(({ buffer }) => openFrame(b, buffer.subarray(2))), [text('one'), text('two'), text('three')]);
  });

  it('offers no sendBatch when the raw path cannot batch', () => {
    const [a] = establishedSessions();
    assert.equal(new SealedPath(capture({ headroom: 5 }), a.datagram).sendBatch, undefined);
    assert.equal(new SealedPath(capture(), a.datagram).sendBatch, undefined);
  });

  it('delivers an opened datagram to the stream once it has registered, and says so', () => {
    const [a] = establishedSessions();
    const sealed = new SealedPath(capture(), a.datagram);
    assert.equal(sealed.deliver(text('early')), false);
    const got: Uint8Array[] = [];
    sealed.onDatagram((datagram) => got.push(datagram));
    assert.equal(sealed.deliver(text('late')), true);
    assert.deepEqual(got, [text('late')]);
  });
});
