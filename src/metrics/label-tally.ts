/**
 * Counts by label set, for events the servers publish. Bounded by construction: every label
 * value comes from a closed list in the server's code (outcomes, error codes, NAT classes,
 * techniques), never from what a peer sends, so a hostile peer cannot grow it.
 */
export class LabelTally {
  readonly #counts = new Map<string, { labels: Record<string, string>; value: number }>();

  add(labels: Record<string, string>, value = 1): void {
    const key = JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
    const entry = this.#counts.get(key);
    if (entry) entry.value += value;
    else this.#counts.set(key, { labels: { ...labels }, value });
  }

  *entries(): Iterable<[Record<string, string>, number]> {
    for (const { labels, value } of this.#counts.values()) yield [labels, value];
  }
}
