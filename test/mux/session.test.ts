import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Socket } from 'node:net';
import {
  encodeFrame, FrameDecoder, FrameType, MAX_FRAME_PAYLOAD, MAX_STREAMS, MuxError, MuxErrorCode, MuxSession, MuxStream, MuxStreamResetError, STREAM_WINDOW, type Frame,
} from '../../src/mux/index.js';
import { once, until, within } from '../support/wait.js';
import { collect, sessionPair, socketPair } from './helpers.js';

/** Every stream `session` accepts is echoed back (half-close passed on). */
function echo(session: MuxSession): void {
  session.on('stream', (stream: MuxStream) => stream.pipe(stream));
}

async function roundTrip(stream: MuxStream, bytes: Buffer): Promise<Buffer> {
  const received = collect(stream);
  stream.end(bytes);
  return received;
}

describe('mux session', () => {
  it('carries 64 streams in parallel, each intact, with ids odd from the initiator', async (t) => {
    const { a, b, close } = await sessionPair();
    t.after(close);
    echo(b);
    const inputs = Array.from({ length: 64 }, (_, i) => randomBytes(20_000 + i * 1_000));
    const streams = inputs.map(() => a.open('echo'));
    assert.ok(streams.every((s) => s.id % 2 === 1));
    const outputs = await Promise.all(streams.map((s, i) => roundTrip(s, inputs[i]!)));
    outputs.forEach((out, i) => assert.ok(out.equals(inputs[i]!), `stream ${i} differs`));
    await until(() => a.streams === 0 && b.streams === 0, 'every stream closed on both sides', { seen: () => `${a.streams} / ${b.streams}` });
  });

  it('passes the target and lets the accepting side open streams too (even ids)', async (t) => {
    const { a, b, close } = await sessionPair();
    t.after(close);
    echo(a);
    const opened = once(b, 'stream');
    const first = a.open('tcp');
    first.end();
    const [stream, target] = await opened;
    assert.equal(target, 'tcp');
    assert.equal((stream as MuxStream).target, 'tcp');
    (stream as MuxStream).resume();
    const back = b.open('reverse');
    assert.equal(back.id % 2, 0);
    assert.equal((await roundTrip(back, Buffer.from('hi'))).toString(), 'hi');
  });

  it('a stream whose reader stalls does not block another; its sender stops at the window', async (t) => {
    const { a, b, close } = await sessionPair();
    t.after(close);
    const accepted: MuxStream[] = [];
    b.on('stream', (stream: MuxStream) => accepted.push(stream));
    const stalled = a.open('stalled');
    const busy = a.open('busy');
    await until(() => accepted.length === 2, 'both streams accepted');
    const [stalledIn, busyIn] = accepted as [MuxStream, MuxStream];
    stalledIn.pause(); // never read
    // The stalled stream's writer fills the peer's window, then write() reports backpressure.
    let writable = true;
    while (writable) writable = stalled.write(Buffer.alloc(MAX_FRAME_PAYLOAD));
    await until(() => stalled.sendWindow === 0, 'the stalled stream\'s window used up', { seen: () => String(stalled.sendWindow) });
    // Meanwhile 8 MiB flow on the other stream, complete.
    const bulk = randomBytes(8 << 20);
    const received = collect(busyIn);
    busy.end(bulk);
    assert.ok((await received).equals(bulk));
    // The stalled one was held to its window all along: nothing beyond it buffered anywhere.
    assert.equal(stalled.sendWindow, 0);
    assert.equal(stalledIn.readableLength, STREAM_WINDOW);
    assert.ok(stalled.writableLength > 0, 'the rest waits in the sender');
    // Once its reader reads, it finishes too.
    const rest = collect(stalledIn);
    stalled.end();
    const total = (await rest).length;
    assert.ok(total > STREAM_WINDOW, `${total} bytes`);
  });

  it('half-closes both ways: each side reads to its end while the other still writes', async (t) => {
    const { a, b, close } = await sessionPair();
    t.after(close);
    const accepted = once(b, 'stream');
    const left = a.open('half');
    left.end('request'); // FIN from a first
    const [right] = (await accepted) as [MuxStream];
    assert.equal((await collect(right, 5_000)).toString(), 'request');
    // b still writes after a's FIN, then ends; a sees all of it and its end.
    const response = collect(left);
    right.write('response, ');
    right.end('then FIN');
    assert.equal((await response).toString(), 'response, then FIN');
    await until(() => left.destroyed && right.destroyed && a.streams + b.streams === 0, 'both ends closed, no stream left', { seen: () => `${left.destroyed} ${right.destroyed} ${a.streams} ${b.streams}` });
  });

  it('for await reads to the end and leaves the stream writable: the answer is not an abort', async (t) => {
    const { a, b, close } = await sessionPair();
    t.after(close);
    const accepted = once(b, 'stream');
    const left = a.open('request');
    const answer = collect(left);
    left.end('request');
    const [right] = (await accepted) as [MuxStream];
    const chunks: Buffer[] = [];
    for await (const chunk of right) chunks.push(chunk);
    assert.equal(Buffer.concat(chunks).toString(), 'request');
    assert.equal(right.destroyed, false);
    right.end('answer');
    assert.equal((await answer).toString(), 'answer');
  });

  it('a reset reaches the other side with its code and reason; the session goes on', async (t) => {
    const { a, b, close } = await sessionPair();
    t.after(close);
    b.on('stream', (stream: MuxStream, target: string) => {
      if (target === 'refuse') stream.reset(MuxErrorCode.ConnectRefused, 'connect ECONNREFUSED 127.0.0.1:9');
      else stream.pipe(stream);
    });
    const refused = a.open('refuse');
    refused.resume();
    const [error] = await once(refused, 'error').catch((e: unknown) => [e]);
    assert.ok(error instanceof MuxStreamResetError);
    assert.equal(error.code, 'ERR_MUX_RESET');
    assert.equal(error.reason, 'connect-refused');
    assert.match(error.message, /connect-refused.*ECONNREFUSED 127\.0\.0\.1:9/);
    // Destroying one's own end mid-stream resets it as CANCEL for the peer.
    const cancelled = once(b, 'stream');
    const doomed = a.open('cancel-me');
    doomed.write('x');
    const [peerSide] = (await cancelled) as [MuxStream];
    peerSide.unpipe(); peerSide.removeAllListeners('data');
    const peerError = once(peerSide, 'error').catch((e: unknown) => [e]);
    doomed.destroy();
    const [cancel] = await peerError;
    assert.equal((cancel as MuxStreamResetError).reason, 'cancel');
    // Other streams still work.
    assert.equal((await roundTrip(a.open('echo'), Buffer.from('still here'))).toString(), 'still here');
  });

  it('refuses to open more than MAX_STREAMS at once, and opens again when one closes', async (t) => {
    const { a, b, close } = await sessionPair();
    t.after(close);
    b.on('stream', (stream: MuxStream) => stream.resume());
    const open = Array.from({ length: MAX_STREAMS }, () => a.open('x'));
    assert.throws(() => a.open('one too many'), (e: unknown) => e instanceof MuxError && e.muxCode === MuxErrorCode.RefusedStream && /128 streams already open/.test(e.message));
    open[0]!.reset();
    a.open('fits again');
  });

  it('close() sends GO_AWAY: the peer ends without an error and opens no new stream', async (t) => {
    const { a, b, close } = await sessionPair();
    t.after(close);
    echo(b);
    const ended = once(b, 'close');
    a.close('done');
    const [error] = await ended;
    assert.equal(error, undefined);
    assert.throws(() => b.open('late'), MuxError);
  });
});

/** A session on one end, raw frames written by hand on the other: the hostile peer. */
async function rawPeer(t: { after(fn: () => void): void }): Promise<{ session: MuxSession; raw: Socket; frames: Frame[]; send(...frames: (Frame | Uint8Array)[]): void }> {
  const [mine, raw] = await socketPair();
  t.after(() => { mine.destroy(); raw.destroy(); });
  const session = new MuxSession(mine, { initiator: false });
  session.on('stream', (stream: MuxStream) => stream.on('error', () => undefined).pause());
  const frames: Frame[] = [];
  const decoder = new FrameDecoder();
  raw.on('data', (chunk: Buffer) => frames.push(...decoder.push(chunk)));
  raw.on('error', () => undefined);
  return { session, raw, frames, send: (...list) => { for (const f of list) raw.write(f instanceof Uint8Array ? f : encodeFrame(f)); } };
}

async function violation(session: MuxSession): Promise<MuxError> {
  const [error] = await within(once(session, 'close'), 'the session closing');
  assert.ok(error instanceof MuxError, `closed with ${String(error)}`);
  return error;
}

describe('mux session ending', () => {
  it('close() mid-transfer: the peer\'s unfinished streams fail, its session ends cleanly', async (t) => {
    const { a, b, close } = await sessionPair();
    t.after(close);
    const accepted = once(b, 'stream');
    const stream = a.open('bulk');
    stream.write(Buffer.alloc(100_000));
    const [peerSide] = (await accepted) as [MuxStream];
    const failed = once(peerSide, 'error').catch((e: unknown) => [e]);
    peerSide.resume();
    const ended = once(b, 'close');
    a.close();
    const [error] = await failed;
    assert.ok(error instanceof MuxError, String(error));
    assert.equal((await ended)[0], undefined);
  });

  it('a GO_AWAY with an error code ends the session with that code and reason', async (t) => {
    const [mine, raw] = await socketPair();
    t.after(() => { mine.destroy(); raw.destroy(); });
    const session = new MuxSession(mine, { initiator: true });
    raw.write(encodeFrame({ type: FrameType.GoAway, streamId: 0, lastStreamId: 0, errorCode: MuxErrorCode.InternalError, reason: 'out of memory' }));
    const error = await violation(session);
    assert.equal(error.muxCode, MuxErrorCode.InternalError);
    assert.match(error.message, /the peer ended the session \(internal-error\): out of memory/);
  });

  it('a stream opened where no one listens for streams is refused, the session goes on', async (t) => {
    const { a, b, close } = await sessionPair();
    t.after(close);
    b.removeAllListeners('stream');
    const refused = a.open('anyone?');
    refused.resume();
    const [error] = await once(refused, 'error').catch((e: unknown) => [e]);
    assert.equal((error as MuxStreamResetError).reason, 'refused-stream');
    assert.equal(a.closed, false);
    assert.equal(b.closed, false);
  });
});

describe('mux session against a peer that breaks the rules', () => {
  it('DATA beyond the window: the connection is reset with FLOW_CONTROL_ERROR, GO_AWAY says so', async (t) => {
    const { session, raw, frames, send } = await rawPeer(t);
    send({ type: FrameType.Open, streamId: 1, target: 'x' });
    for (let sent = 0; sent <= STREAM_WINDOW; sent += MAX_FRAME_PAYLOAD) send({ type: FrameType.Data, streamId: 1, data: new Uint8Array(MAX_FRAME_PAYLOAD) });
    const error = await violation(session);
    assert.equal(error.muxCode, MuxErrorCode.FlowControlError);
    assert.match(error.message, /DATA of 16384 bytes on stream 1, window 0/);
    await until(() => raw.destroyed || raw.readableEnded, 'the raw peer\'s connection ended');
    const goAway = frames.find((f) => f.type === FrameType.GoAway) as Extract<Frame, { type: FrameType.GoAway }>;
    assert.equal(goAway.errorCode, MuxErrorCode.FlowControlError);
  });

  it('more than MAX_STREAMS streams opened: reset with REFUSED_STREAM as a protocol violation', async (t) => {
    const { session, send } = await rawPeer(t);
    for (let i = 0; i <= MAX_STREAMS; i++) send({ type: FrameType.Open, streamId: 1 + 2 * i, target: 'x' });
    const error = await violation(session);
    assert.equal(error.muxCode, MuxErrorCode.RefusedStream);
    assert.match(error.message, /beyond the limit of 128 open streams/);
  });

  it('a frame larger than the limit, a frame on a stream never opened, an id reused: each a protocol error', async (t) => {
    const cases: [(Frame | Uint8Array)[], RegExp][] = [
      [[Uint8Array.of(0xff, 0xff, 0xff, FrameType.Data, 0, 0, 0, 1)], /DATA: payload of 16777215 bytes/],
      [[{ type: FrameType.Data, streamId: 5, data: Uint8Array.of(1) }], /DATA on stream 5, which was never opened/],
      [[{ type: FrameType.Open, streamId: 3, target: 'x' }, { type: FrameType.Open, streamId: 1, target: 'x' }], /OPEN of stream 1, not above the last one opened \(3\)/],
      [[{ type: FrameType.Open, streamId: 2, target: 'x' }], /OPEN of stream 2, an id of this side's/],
      [[{ type: FrameType.Open, streamId: 1, target: 'x' }, { type: FrameType.Fin, streamId: 1 }, { type: FrameType.Data, streamId: 1, data: Uint8Array.of(1) }], /DATA on stream 1 after its FIN/],
    ];
    for (const [frames, message] of cases) {
      const { session, send } = await rawPeer(t);
      send(...frames);
      const error = await violation(session);
      assert.match(error.message, message);
    }
  });

  it('frames for a stream reset here are ignored, not an error', async (t) => {
    const { session, send, frames } = await rawPeer(t);
    const accepted = once(session, 'stream');
    send({ type: FrameType.Open, streamId: 1, target: 'x' });
    const [stream] = (await accepted) as [MuxStream];
    stream.reset(MuxErrorCode.Cancel);
    send({ type: FrameType.Data, streamId: 1, data: Uint8Array.of(1) }, { type: FrameType.Open, streamId: 3, target: 'y' });
    await until(() => session.streams === 1, 'the second stream open');
    assert.equal(session.closed, false);
    assert.ok(frames.some((f) => f.type === FrameType.Reset && f.streamId === 1));
  });
});
