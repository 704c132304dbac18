/**
 * A set of non-negative integers kept as sorted, disjoint, half-open ranges [start, end).
 *
 * The transport uses it for every "which of these have we seen" question: packet numbers
 * received (the source of SACK-style ACK ranges, RFC 2018 §3 / RFC 9000 §19.3), packet
 * numbers resolved by the sender, stream bytes received (reassembly), and stream bytes acked or
 * lost on the sending side. Adjacent ranges merge, so a transfer without loss stays one range.
 */
export class RangeSet {
  #starts: number[] = [];
  #ends: number[] = [];

  /** Number of disjoint ranges. */
  get rangeCount(): number {
    return this.#starts.length;
  }

  get isEmpty(): boolean {
    return this.#starts.length === 0;
  }

  /** Smallest member, or undefined when empty. */
  get min(): number | undefined {
    return this.#starts[0];
  }

  /** One past the largest member, or undefined when empty. */
  get max(): number | undefined {
    return this.#ends[this.#ends.length - 1];
  }

  /** End of the lowest range: with a set that starts at 0, the first value not in it. */
  get firstEnd(): number | undefined {
    return this.#ends[0];
  }

  /** Start and end of range `index` (0 = lowest). */
  range(index: number): [number, number] {
    return [this.#starts[index]!, this.#ends[index]!];
  }

  has(value: number): boolean {
    const i = this.#firstEndAbove(value);
    return i < this.#starts.length && this.#starts[i]! <= value;
  }

  /** True when every value of [start, end) is in the set. */
  covers(start: number, end: number): boolean {
    if (start >= end) return true;
    const i = this.#firstEndAbove(start);
    return i < this.#starts.length && this.#starts[i]! <= start && this.#ends[i]! >= end;
  }

  add(start: number, end: number): void {
    if (start >= end) return;
    // Fast path for the common case, in-order arrival: extend the highest range.
    const last = this.#ends.length - 1;
    if (last >= 0 && start >= this.#starts[last]! && start <= this.#ends[last]!) {
      if (end > this.#ends[last]!) this.#ends[last] = end;
      return;
    }
    // Ranges that overlap or touch [start, end) are i .. j-1.
    const i = this.#firstEndAtLeast(start);
    const j = this.#firstStartAbove(end);
    if (i === j) {
      this.#starts.splice(i, 0, start);
      this.#ends.splice(i, 0, end);
      return;
    }
    const mergedStart = Math.min(start, this.#starts[i]!);
    const mergedEnd = Math.max(end, this.#ends[j - 1]!);
    this.#starts.splice(i, j - i, mergedStart);
    this.#ends.splice(i, j - i, mergedEnd);
  }

  delete(start: number, end: number): void {
    if (start >= end) return;
    // Ranges that overlap [start, end) are i .. j-1.
    const i = this.#firstEndAbove(start);
    const j = this.#firstStartAtLeast(end);
    if (i >= j) return;
    const starts: number[] = [];
    const ends: number[] = [];
    if (this.#starts[i]! < start) {
      starts.push(this.#starts[i]!);
      ends.push(start);
    }
    if (this.#ends[j - 1]! > end) {
      starts.push(end);
      ends.push(this.#ends[j - 1]!);
    }
    this.#starts.splice(i, j - i, ...starts);
    this.#ends.splice(i, j - i, ...ends);
  }

  /** Calls `visit` for each maximal piece of [start, end) that is NOT in the set, in order. */
  forEachGap(start: number, end: number, visit: (gapStart: number, gapEnd: number) => void): void {
    let cursor = start;
    for (let i = this.#firstEndAbove(start); i < this.#starts.length && cursor < end; i++) {
      const s = this.#starts[i]!;
      if (s >= end) break;
      if (s > cursor) visit(cursor, s);
      cursor = Math.max(cursor, this.#ends[i]!);
    }
    if (cursor < end) visit(cursor, end);
  }

  /** Drops the lowest range (bounding memory when only recent ranges matter). */
  deleteLowestRange(): void {
    this.#starts.shift();
    this.#ends.shift();
  }

  clear(): void {
    this.#starts = [];
    this.#ends = [];
  }

  /** Smallest i with ends[i] >= value. */
  #firstEndAtLeast(value: number): number {
    let lo = 0;
    let hi = this.#ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#ends[mid]! >= value) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Smallest i with ends[i] > value. */
  #firstEndAbove(value: number): number {
    return this.#firstEndAtLeast(value + 1);
  }

  /** Smallest j with starts[j] > value. */
  #firstStartAbove(value: number): number {
    let lo = 0;
    let hi = this.#starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#starts[mid]! > value) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Smallest j with starts[j] >= value. */
  #firstStartAtLeast(value: number): number {
    return this.#firstStartAbove(value - 1);
  }
}
