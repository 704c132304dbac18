/**
 * The technique a session's signed offers point at, as the rendezvous server sees them when it
 * sends `punch`. It is a hint, not the outcome: the peers choose and race techniques after the
 * punch and never tell the server which one won (docs/metrics.md says what that leaves out).
 */
import type { AcceptBody, IntentBody } from './messages.js';

export type TechniqueHint = 'relay' | 'birthday' | 'prediction' | 'reversal' | 'port-mapping' | 'hole-punch';

export const TECHNIQUE_HINTS: readonly TechniqueHint[] = ['relay', 'birthday', 'prediction', 'reversal', 'port-mapping', 'hole-punch'];

/** In the order src/peer tries them when several apply: the hardest case first. */
export function techniqueHint(intent: IntentBody, accept: AcceptBody): TechniqueHint {
  if (intent.transport === 'relay') return 'relay';
  const sides = [intent, accept];
  if (sides.some((s) => s.natMapping === 'random-per-destination')) return 'birthday';
  if (sides.some((s) => s.candidates.some((c) => c.kind === 'predicted'))) return 'prediction';
  // Reversal: exactly one side is reachable over the transport asked for (UDP unless "tcp").
  const over = intent.transport === 'tcp' ? 'tcp' : 'udp';
  const reachable = sides.filter((s) => s.reachable?.includes(over)).length;
  if (reachable === 1) return 'reversal';
  if (sides.some((s) => s.candidates.some((c) => c.kind === 'mapped'))) return 'port-mapping';
  return 'hole-punch';
}
