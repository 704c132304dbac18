/**
 * Who makes room when a shared budget is full: the oldest member of the group holding the most,
 * and only when that group holds more than the newcomer's would. A few holders (repeat
 * initiators of one target, silent sockets from a few addresses) then cannot lock everyone else
 * out: each newcomer takes a place from whoever holds the most, and a holder can never be
 * pushed below what the newcomer ends up with. The same rule as max-min fairness in queue
 * scheduling (fair queueing drops from the longest queue, e.g. Longest Queue Drop).
 */

/** A group of holders' places, oldest first. */
export type Group<T> = ReadonlySet<T> | readonly T[];

/**
 * The member to evict for a newcomer whose group already holds `newcomerHolds`: the oldest of
 * the largest group, ties between groups going to the one whose oldest member `before` the
 * other's (e.g. older, or sent by a more insistent holder); undefined when no group holds more
 * than `newcomerHolds`.
 */
export function fairShareVictim<T>(groups: Iterable<Group<T>>, newcomerHolds: number, before: (a: T, b: T) => boolean): T | undefined {
  let victim: T | undefined;
  let most = newcomerHolds;
  for (const group of groups) {
    const size = 'size' in group ? group.size : group.length;
    if (size < most || size === 0) continue;
    const oldest = first(group);
    if (size === most && (victim === undefined || !before(oldest, victim))) continue;
    victim = oldest;
    most = size;
  }
  return victim;
}

function first<T>(group: Group<T>): T {
  for (const member of group) return member;
  throw new RangeError('fair share: an empty group has no oldest member');
}
