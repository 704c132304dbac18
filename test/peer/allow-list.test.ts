import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { NatpunchError } from '../../src/errors.js';
import { generateIdentity } from '../../src/identity/index.js';
import { allowPredicate, parseAllowFile } from '../../src/peer/allow-list.js';

const a = generateIdentity().peerId;
const b = generateIdentity().peerId;

test('an allowed-peers file: one id a line, blank lines and # comments ignored (as authorized_keys)', () => {
  const text = `# who may connect\n${a}\n\n   ${b}   # the laptop\r\n#${generateIdentity().peerId}\n`;
  assert.deepEqual(parseAllowFile(text, 'allowed'), [a, b]);
});

test('a line that is not one peer id is a usage error naming the file and line', () => {
  assert.throws(() => parseAllowFile(`${a}\nnot-a-peer-id\n`, 'allowed'), (error: unknown) => {
    assert.ok(NatpunchError.is(error));
    assert.equal(error.code, 'ERR_USAGE');
    assert.match(error.message, /^allowed:2: /);
    return true;
  });
  assert.throws(() => parseAllowFile(`${a} ${b}\n`, 'allowed'), /allowed:1: one peer id per line/);
});

test('the predicate admits exactly the listed ids', async () => {
  const allowed = allowPredicate([a]);
  assert.equal(await allowed(a), true);
  assert.equal(await allowed(b), false);
});

test('parsing any text throws nothing but NatpunchError (fuzz)', () => {
  fc.assert(fc.property(fc.string({ maxLength: 400 }), (text) => {
    try {
      parseAllowFile(text, 'fuzz');
    } catch (error) {
      if (!NatpunchError.is(error)) throw error;
    }
  }), { numRuns: 2000 });
});
