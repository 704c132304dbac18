import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fairShareVictim } from '../../src/rendezvous/fair-share.js';

const older = (a: number, b: number): boolean => a < b;

test('the oldest member of the largest group makes room', () => {
  assert.equal(fairShareVictim([[5, 6], [1], [3, 4, 7]], 0, older), 3);
});

test('nobody is evicted for a newcomer that already holds as many as the largest group', () => {
  assert.equal(fairShareVictim([[1, 2], [3, 4]], 2, older), undefined);
  assert.equal(fairShareVictim([], 0, older), undefined);
  assert.equal(fairShareVictim([new Set<number>()], 0, older), undefined);
});

test('between groups holding as many, `before` decides which group\'s oldest goes', () => {
  assert.equal(fairShareVictim([new Set([4]), new Set([2]), new Set([3])], 0, older), 2);
  assert.equal(fairShareVictim([[4], [2], [3]], 0, (a, b) => a > b), 4);
});
