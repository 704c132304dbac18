/**
 * Which of a connection's working paths carries the stream: the rule, with no state of its own.
 *
 * 1. Only a path that has proved it carries full-size datagrams both ways (a padded
 *    PATH_CHALLENGE answered by a padded PATH_RESPONSE, @see RFC 9000 §8.2 and §14.1) and whose
 *    peer still answers (consent, @see RFC 7675 §5.1) is eligible.
 * 2. Direct before relay, and among direct paths UDP before TCP: a relay costs an operator
 *    bandwidth and adds a hop; a stream over TCP suffers head-of-line blocking twice.
 * 3. Within a class, the lower smoothed RTT — but only by a clear margin (HYSTERESIS) and not
 *    sooner than MIN_DWELL_MS after the last change, so two similar paths do not take turns.
 *    Tailscale's magicsock applies the same kind of rule (a better path must win by a margin
 *    and the current one is kept for a while), for the same reason: every switch restarts the
 *    stream's congestion controller.
 */
import type { PathKind } from './raw-path.js';

/** Rank of each kind: lower is better. */
export const PATH_CLASS: Readonly<Record<PathKind, number>> = { 'direct-udp': 0, 'direct-tcp': 1, relay: 2 };
/** A path of the same class must be this much faster (ratio of smoothed RTTs)… */
export const HYSTERESIS = 0.7;
/** …and faster by at least this much, ms, so jitter on a LAN does not count. */
export const MIN_RTT_GAIN_MS = 5;
/** Least time between two changes made for RTT alone, ms. */
export const MIN_DWELL_MS = 5_000;

export interface Candidate {
  kind: PathKind;
  /** Smoothed RTT of the path's probes, ms; undefined before the first answer. */
  rttMs: number | undefined;
  usable: boolean;
}

/**
 * The index of the path to use, given the current one (-1: none usable now) and how long ago
 * the last change was. Returns `current` when no other path is clearly better.
 */
export function selectPath(paths: readonly Candidate[], current: number, msSinceChange: number): number {
  const currentPath = current >= 0 ? paths[current] : undefined;
  let best = currentPath?.usable ? current : -1;
  for (let i = 0; i < paths.length; i++) {
    const path = paths[i]!;
    if (i === best || !path.usable) continue;
    if (best < 0) {
      best = i;
      continue;
    }
    const incumbent = paths[best]!;
    const classGain = PATH_CLASS[incumbent.kind] - PATH_CLASS[path.kind];
    if (classGain > 0) best = i;
    else if (classGain === 0 && fasterByMargin(path, incumbent) && (best !== current || msSinceChange >= MIN_DWELL_MS)) best = i;
  }
  return best;
}

function fasterByMargin(path: Candidate, than: Candidate): boolean {
  if (path.rttMs === undefined || than.rttMs === undefined) return false;
  return path.rttMs < than.rttMs * HYSTERESIS && than.rttMs - path.rttMs >= MIN_RTT_GAIN_MS;
}
