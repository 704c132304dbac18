import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HYSTERESIS, MIN_DWELL_MS, MIN_RTT_GAIN_MS, PATH_CLASS, selectPath, type Candidate } from '../../src/path/path-selection.js';
import type { PathKind } from '../../src/path/raw-path.js';

const udp = (rttMs: number | undefined, usable = true): Candidate => ({ kind: 'direct-udp', rttMs, usable });
const tcp = (rttMs: number | undefined, usable = true): Candidate => ({ kind: 'direct-tcp', rttMs, usable });
const relay = (rttMs: number | undefined, usable = true): Candidate => ({ kind: 'relay', rttMs, usable });
const LONG_AGO = MIN_DWELL_MS;
const JUST_NOW = MIN_DWELL_MS - 1;

describe('the path selection rule', () => {
  it('ranks direct UDP before direct TCP before a relay', () => {
    const kinds: PathKind[] = ['direct-udp', 'direct-tcp', 'relay'];
    assert.deepEqual([...kinds].sort((x, y) => PATH_CLASS[x] - PATH_CLASS[y]), kinds);
  });

  const cases: Array<{ name: string; paths: Candidate[]; current: number; since: number; expected: number }> = [
    { name: 'returns -1 when no path is given', paths: [], current: -1, since: LONG_AGO, expected: -1 },
    { name: 'returns -1 when no path is usable', paths: [udp(10, false), tcp(5, false)], current: 0, since: LONG_AGO, expected: -1 },
    { name: 'keeps the current path when it is the only one', paths: [udp(10)], current: 0, since: 0, expected: 0 },
    { name: 'takes the only usable path when the current one is not usable', paths: [udp(10, false), relay(80)], current: 0, since: 0, expected: 1 },
    { name: 'takes a better class at once, dwell or not', paths: [tcp(5), udp(50)], current: 0, since: 0, expected: 1 },
    { name: 'takes direct over a relay even when the relay is faster', paths: [relay(5), tcp(200)], current: 0, since: 0, expected: 1 },
    { name: 'keeps a better class over a faster worse one', paths: [udp(100), tcp(1)], current: 0, since: LONG_AGO, expected: 0 },
    { name: 'ignores an unusable path of a better class', paths: [tcp(20), udp(1, false)], current: 0, since: LONG_AGO, expected: 0 },
    { name: 'moves to a same-class path faster by the margin once the dwell has passed', paths: [udp(100), udp(60)], current: 0, since: LONG_AGO, expected: 1 },
    { name: 'stays within the dwell even for a much faster same-class path', paths: [udp(100), udp(10)], current: 0, since: JUST_NOW, expected: 0 },
    { name: 'stays for a same-class path not faster by the ratio', paths: [udp(100), udp(100 * HYSTERESIS + 1)], current: 0, since: LONG_AGO, expected: 0 },
    { name: 'stays for a same-class path faster by the ratio but by less than the minimum gain', paths: [udp(MIN_RTT_GAIN_MS * 2), udp(MIN_RTT_GAIN_MS * 2 - MIN_RTT_GAIN_MS + 1)], current: 0, since: LONG_AGO, expected: 0 },
    { name: 'moves when faster by exactly the minimum gain and the ratio', paths: [udp(16), udp(16 - MIN_RTT_GAIN_MS)], current: 0, since: LONG_AGO, expected: 1 },
    { name: 'stays when the other path has no RTT yet', paths: [udp(100), udp(undefined)], current: 0, since: LONG_AGO, expected: 0 },
    { name: 'stays when the current path has no RTT yet', paths: [udp(undefined), udp(1)], current: 0, since: LONG_AGO, expected: 0 },
    { name: 'takes the fastest of two better-class paths, without waiting for the dwell', paths: [relay(10), udp(100), udp(20)], current: 0, since: 0, expected: 2 },
    { name: 'with no current path, takes a better class found later', paths: [relay(5), tcp(50), udp(90)], current: -1, since: 0, expected: 2 },
    { name: 'with no current path, takes the first usable of a class unless another is faster by the margin', paths: [udp(50), udp(45)], current: -1, since: 0, expected: 0 },
    { name: 'with no current path, takes a same-class path faster by the margin', paths: [udp(50), udp(20)], current: -1, since: 0, expected: 1 },
  ];
  for (const { name, paths, current, since, expected } of cases) {
    it(name, () => {
      assert.equal(selectPath(paths, current, since), expected);
    });
  }
});
