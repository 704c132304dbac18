import { NatpunchError } from '../errors.js';

/**
 * Why a file transfer failed. The same strings travel in the protocol's ERROR message, so the
 * side that did not fail learns why the other one did (docs/decisions/011-file-transfer.md).
 */
export type TransferFailure =
  /** The bytes on the stream are not this protocol (the peer is not `natpunch send`/`receive`), or break its order. */
  | 'protocol'
  /** The peer speaks another version of the protocol. */
  | 'unsupported-version'
  /** An entry's path is absolute, climbs out with `..`, holds a control character, or would pass through a symbolic link. */
  | 'unsafe-path'
  /** The offer is larger than the receiver allows (entries, bytes, path length). */
  | 'limit'
  /** A file of that name is already in the output directory (the receiver never overwrites). */
  | 'exists'
  /** Another transfer is writing the same name right now. */
  | 'busy'
  /** The receiver could not write (disk full, file size limit, permissions). */
  | 'write-failed'
  /** The sender could not read a file it offered, or the file shrank while it was sent. */
  | 'read-failed'
  /** The received bytes do not hash to what the sender read: the file changed while it was sent. */
  | 'hash-mismatch'
  /** One side stopped the transfer (Ctrl-C, SIGTERM, an AbortSignal). */
  | 'aborted'
  /** The connection ended before the transfer did. */
  | 'closed';

export const TRANSFER_FAILURES: readonly TransferFailure[] = [
  'protocol', 'unsupported-version', 'unsafe-path', 'limit', 'exists', 'busy', 'write-failed', 'read-failed', 'hash-mismatch', 'aborted', 'closed',
];

export function isTransferFailure(value: string): value is TransferFailure {
  return (TRANSFER_FAILURES as readonly string[]).includes(value);
}

/**
 * A file transfer failed. `reason` says why; `remote` is true when the peer reported it (its
 * ERROR message), false when this side found it.
 */
export class TransferError extends NatpunchError {
  /** Why: see {@link TransferFailure}. */
  readonly reason: TransferFailure;
  /** True when the peer reported the failure, false when this side found it. */
  readonly remote: boolean;
  constructor(reason: TransferFailure, message: string, options: { remote?: boolean; cause?: unknown } = {}) {
    super('ERR_TRANSFER', message, { cause: options.cause });
    this.name = 'TransferError';
    this.reason = reason;
    this.remote = options.remote ?? false;
  }
}

/**
 * A malformed transfer message. `offset` is where in its body, if known; `tooLarge` is set when
 * the frame was well formed but longer than this side accepts (a limit, not a fault).
 */
export class TransferDecodeError extends NatpunchError {
  /** Where in the message body decoding failed, when known. */
  readonly offset: number | undefined;
  /** The message was well formed but larger than this side accepts. */
  readonly tooLarge: boolean;
  constructor(message: string, offset?: number, options: { tooLarge?: boolean } = {}) {
    super('ERR_TRANSFER_DECODE', message);
    this.name = 'TransferDecodeError';
    this.offset = offset;
    this.tooLarge = options.tooLarge ?? false;
  }
}
