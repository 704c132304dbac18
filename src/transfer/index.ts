/** File transfer over a natpunch connection (`natpunch send` / `natpunch receive`). @see docs/decisions/011-file-transfer.md */
export { sendFiles, encodeOffer, CHUNK_BYTES, type SendOptions } from './sender.js';
export { receiveFiles, type ReceiveOptions } from './receiver.js';
export { collectEntries, type LocalEntry, type LocalEntries } from './local-entries.js';
export { TransferError, TransferDecodeError, type TransferFailure } from './errors.js';
export type { TransferProgress, TransferSummary, ProgressListener } from './progress.js';
export type { Entry } from './messages.js';
export { PARTIAL_SUFFIX } from './entry-path.js';
