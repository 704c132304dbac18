/**
 * Raw paths for the path tests: an end of an in-process lossy link (test/transport/lossy-link.ts)
 * dressed as a RawPath (kind, remote, technique, open, onClose, close), so the handshake and the
 * path manager run over seeded loss without sockets.
 */
import type { PathKind, RawPath } from '../../src/path/raw-path.js';
import type { DatagramPath } from '../../src/transport/datagram-path.js';
import { createLossyLink, type LossyLink, type LossyLinkOptions } from '../transport/lossy-link.js';

export interface TestRawPath extends RawPath {
  /** Frames handed to send() (after close() too, where they go nowhere). */
  readonly frames: Uint8Array[];
  /** Delivers `frame` to this path's handlers, as if it had arrived from the peer. */
  inject(frame: Uint8Array): void;
  /** The path dies on its own: open turns false and the onClose handlers run, once. */
  kill(error?: Error): void;
}

export interface RawPathOptions {
  kind?: PathKind;
  remote: string;
  technique?: string;
  /** Keep a copy of every frame sent (for tests that replay or tamper with them). */
  record?: boolean;
}

/** `end` (one side of a link) as a RawPath; frames sent once it is closed are dropped. */
export function rawPath(end: DatagramPath, options: RawPathOptions): TestRawPath {
  const handlers: Array<(frame: Uint8Array) => void> = [];
  let closeHandlers: Array<(error?: Error) => void> = [];
  let open = true;
  const frames: Uint8Array[] = [];
  end.onDatagram((frame) => {
    if (open) for (const handler of handlers) handler(frame);
  });
  return {
    kind: options.kind ?? 'direct-udp',
    remote: options.remote,
    technique: options.technique ?? 'test-link',
    maxPayload: end.maxPayload,
    frames,
    get open() {
      return open;
    },
    send(frame) {
      if (options.record) frames.push(Uint8Array.from(frame));
      if (open) end.send(frame);
    },
    onDatagram: (handler) => handlers.push(handler),
    onClose: (handler) => closeHandlers.push(handler),
    inject(frame) {
      for (const handler of handlers) handler(frame);
    },
    kill(error) {
      if (!open) return;
      open = false;
      const pending = closeHandlers;
      closeHandlers = [];
      for (const handler of pending) handler(error);
    },
    close() {
      open = false;
      closeHandlers = [];
    },
  };
}

export interface RawLink {
  readonly link: LossyLink;
  /** Side A's path: its remote is B's address. */
  readonly a: TestRawPath;
  readonly b: TestRawPath;
}

/** A seeded lossy link with a RawPath at each end. */
export function rawLink(options: LossyLinkOptions & { kind?: PathKind; technique?: string; record?: boolean; name?: string }): RawLink {
  const link = createLossyLink(options);
  const name = options.name ?? `${options.seed}`;
  const common = { kind: options.kind, technique: options.technique, record: options.record };
  return {
    link,
    a: rawPath(link.a, { ...common, remote: `b.${name}:1` }),
    b: rawPath(link.b, { ...common, remote: `a.${name}:1` }),
  };
}

/** `frames` as they go on a TCP path (tcp-path.ts): each behind its 16-bit length. */
export function lengthPrefixed(frames: Uint8Array[]): Buffer {
  return Buffer.concat(frames.flatMap((frame) => [Buffer.from([frame.length >>> 8, frame.length & 0xff]), frame]));
}
