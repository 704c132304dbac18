/** What a transfer reports as it goes, and at its end (both sides count the same way). */
export interface TransferProgress {
  /** Bytes of the offer done: resumed ones and those moved in this run. */
  bytes: number;
  /** Bytes in the whole offer. */
  total: number;
  /** Bytes moved in this run. */
  transferred: number;
  /** Bytes a receiver already held from an earlier, interrupted run (not moved again). */
  resumed: number;
  /** The entry path in progress (null before the first file and after the last). */
  file: string | null;
  /** Files complete (receiver: written and verified; sender: all its bytes sent). */
  files: number;
}

/** What {@link sendFiles} and {@link receiveFiles} resolve with once every file is verified. */
export interface TransferSummary {
  /** Files written and verified by the receiver. */
  files: number;
  /** Directories in the offer. */
  directories: number;
  /** Bytes in the offer. */
  bytes: number;
  /** Bytes moved in this run. */
  transferred: number;
  /** Bytes already at the receiver from an earlier run. */
  resumed: number;
  /** Entry paths, in offer order. */
  paths: string[];
}

/** Called with the transfer's progress after each step. */
export type ProgressListener = (progress: TransferProgress) => void;

/** Counts a transfer's progress and tells a listener after each step. */
export class ProgressCounter {
  readonly state: TransferProgress;
  readonly #listener: ProgressListener | undefined;

  constructor(total: number, listener?: ProgressListener) {
    this.state = { bytes: 0, total, transferred: 0, resumed: 0, file: null, files: 0 };
    this.#listener = listener;
  }

  startFile(path: string, resumed: number): void {
    this.state.file = path;
    this.state.resumed += resumed;
    this.state.bytes += resumed;
    this.#emit();
  }

  moved(bytes: number): void {
    this.state.bytes += bytes;
    this.state.transferred += bytes;
    this.#emit();
  }

  fileDone(): void {
    this.state.files++;
  }

  finish(): void {
    this.state.file = null;
    this.#emit();
  }

  #emit(): void {
    this.#listener?.({ ...this.state });
  }
}
