import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/sim/virtual-clock.js';
import { Prng } from '../../src/sim/prng.js';
import { sleep } from '../../src/clock.js';
import { NatpunchError } from '../../src/errors.js';

test('virtual time stands still until the scheduler runs an event', async () => {
  const clock = new VirtualClock();
  let fired = false;
  clock.setTimeout(() => { fired = true; }, 200);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(clock.now(), 0);
  assert.equal(fired, false);
  await clock.advance(199);
  assert.equal(fired, false);
  await clock.advance(1);
  assert.equal(fired, true);
  assert.equal(clock.now(), 200);
});

test('timers fire in time order, and timers set for the same time in the order they were set', async () => {
  const clock = new VirtualClock();
  const order: string[] = [];
  clock.setTimeout(() => order.push('c'), 30);
  clock.setTimeout(() => order.push('a1'), 10);
  clock.setTimeout(() => order.push('a2'), 10);
  clock.setTimeout(() => order.push('b'), 20);
  await clock.advance(100);
  assert.deepEqual(order, ['a1', 'a2', 'b', 'c']);
});

test('a cleared timer never fires', async () => {
  const clock = new VirtualClock();
  let fired = false;
  const handle = clock.setTimeout(() => { fired = true; }, 5);
  clock.clearTimeout(handle);
  await clock.advance(10);
  assert.equal(fired, false);
  assert.equal(clock.pending, 0);
});

test('an await chain started by one event finishes before time moves on', async () => {
  const clock = new VirtualClock();
  const seen: number[] = [];
  const work = (async () => {
    await sleep(clock, 100);
    seen.push(clock.now());
    await Promise.resolve();
    await new Promise((resolve) => process.nextTick(resolve));
    seen.push(clock.now());
    await sleep(clock, 50);
    seen.push(clock.now());
    return 'done';
  })();
  clock.setTimeout(() => seen.push(-clock.now()), 100);
  assert.equal(await clock.run(work), 'done');
  assert.deepEqual(seen, [100, 100, -100, 150]);
});

test('ten virtual minutes of 20 ms timers run in a few seconds of wall time at most', async () => {
  const clock = new VirtualClock();
  let ticks = 0;
  const tick = (): void => { ticks++; clock.setTimeout(tick, 20); };
  clock.setTimeout(tick, 20);
  const started = performance.now();
  await clock.advance(600_000);
  assert.equal(ticks, 30_000);
  assert.ok(performance.now() - started < 5_000, `took ${performance.now() - started} ms`);
});

test('wallNow is the epoch plus virtual time, so startAt epochs work', async () => {
  const clock = new VirtualClock({ epochMs: 1_000_000 });
  assert.equal(clock.wallNow(), 1_000_000);
  await clock.advance(250);
  assert.equal(clock.wallNow(), 1_000_250);
});

test('run fails with ERR_SIM when the work waits on something outside the sim', async () => {
  const clock = new VirtualClock();
  const never = new Promise(() => undefined);
  await assert.rejects(clock.run(never), (e: unknown) => NatpunchError.is(e) && e.code === 'ERR_SIM' && /nothing is scheduled/.test(e.message));
});

test('run fails with ERR_SIM when the work does not settle within maxMs of virtual time', async () => {
  const clock = new VirtualClock();
  const tick = (): void => { clock.setTimeout(tick, 1000); };
  tick();
  await assert.rejects(clock.run(new Promise(() => undefined), { maxMs: 10_000 }), (e: unknown) => NatpunchError.is(e) && e.code === 'ERR_SIM' && /10000 virtual ms/.test(e.message));
  assert.ok(clock.now() <= 10_000);
});

test('sleep rejects with the signal\'s reason when aborted, and its timer is cleared', async () => {
  const clock = new VirtualClock();
  const ac = new AbortController();
  const slept = sleep(clock, 1000, ac.signal);
  clock.setTimeout(() => ac.abort(new Error('stop')), 10);
  await assert.rejects(clock.run(slept), /stop/);
  assert.equal(clock.pending, 0);
});

test('a seeded PRNG repeats its draws, and derived streams do not depend on earlier draws', () => {
  const draws = (p: Prng): number[] => Array.from({ length: 5 }, () => p.int(0, 1_000_000));
  assert.deepEqual(draws(new Prng(7)), draws(new Prng(7)));
  assert.notDeepEqual(draws(new Prng(7)), draws(new Prng(8)));
  const used = new Prng(7);
  draws(used);
  assert.deepEqual(draws(used.derive('nat/a')), draws(new Prng(7).derive('nat/a')));
  assert.notDeepEqual(draws(new Prng(7).derive('nat/a')), draws(new Prng(7).derive('nat/b')));
});

test('PRNG integers cover their range evenly', () => {
  const p = new Prng('even');
  const counts = new Array<number>(10).fill(0);
  for (let i = 0; i < 10_000; i++) counts[p.int(0, 9)]!++;
  for (const c of counts) assert.ok(c > 850 && c < 1150, `counts ${counts.join(',')}`);
});
