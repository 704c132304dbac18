/**
 * How fast this machine runs a fixed piece of CPU-bound work right now, so that a benchmark's
 * figures can be read against it.
 *
 * Why: on a shared VM the host can slow every process by up to half for minutes at a time, and
 * neither the load average nor steal time shows it. On 2026-12-06, on the 2-core benchmark
 * machine, the same build brokered 5,555 and then 2,837 connects/s in consecutive rendezvous
 * runs, with the node at 1.00 core in both. Over the same minutes a 1200-byte copy loop went from
 * 60 to 105 ns.
 *
 * The probe is a JSON round trip of a small message, about what one rendezvous frame costs in
 * JavaScript. The runner measures it before and after each benchmark, prints both, and stores them
 * with the result. A run whose probe was slow, or moved a lot, measured the host as much as the
 * code.
 */
import { performance } from 'node:perf_hooks';

const MESSAGE = {
  type: 'punch', session: 'q0sW3mX9cV1bN5kL8jH2gF4d', peer: 'a'.repeat(56), role: 'controlling',
  intent: { body: 'b'.repeat(240), sig: 'c'.repeat(86) }, key: 'd'.repeat(44), startInMs: 12,
};
const PER_BATCH = 2000;
const BATCHES = 21;

/** Median µs of one round trip over BATCHES batches (the median sets aside a GC or a preemption in one batch). */
export function probeHostSpeed(): number {
  const perOp: number[] = [];
  let sink = 0;
  for (let b = 0; b < BATCHES; b++) {
    const started = performance.now();
    for (let i = 0; i < PER_BATCH; i++) sink += (JSON.parse(JSON.stringify(MESSAGE)) as { startInMs: number }).startInMs;
    perOp.push(((performance.now() - started) * 1000) / PER_BATCH);
  }
  // The sum is used, so the JIT cannot drop the round trips as dead code.
  if (sink !== BATCHES * PER_BATCH * MESSAGE.startInMs) throw new Error('host speed probe: a JSON round trip changed the message');
  perOp.sort((x, y) => x - y);
  return Number(perOp[BATCHES >> 1]!.toFixed(2));
}
