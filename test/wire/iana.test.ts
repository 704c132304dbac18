/** Our constants against the IANA STUN registry (fixtures/iana-stun.ts), STYLE §10. */

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AttrType, MAGIC_COOKIE, Method, attrName, isComprehensionRequired, methodName } from '../../src/wire/index.js';
import { IANA_ATTRIBUTES, IANA_METHODS } from './fixtures/iana-stun.js';

const registeredAttributes = new Map(IANA_ATTRIBUTES);
const registeredMethods = new Map(IANA_METHODS);

describe('constants against the IANA registry', () => {
  for (const [key, value] of Object.entries(AttrType)) {
    if (typeof value !== 'number') continue;
    it(`AttrType.${key} is 0x${value.toString(16).padStart(4, '0')}, registered as ${attrName(value)}`, () => {
      assert.equal(registeredAttributes.get(value), attrName(value));
    });
  }

  for (const [key, value] of Object.entries(Method)) {
    if (typeof value !== 'number') continue;
    it(`Method.${key} is 0x${value.toString(16).padStart(3, '0')}, registered as ${methodName(value)}`, () => {
      assert.equal(registeredMethods.get(value), methodName(value));
    });
  }

  it('prints unregistered types and methods as hex', () => {
    assert.equal(attrName(0xc057), '0xc057');
    assert.equal(attrName(0x0000), '0x0000');
    assert.equal(methodName(0x080), '0x0080');
  });

  it('splits comprehension-required from comprehension-optional at 0x8000 (RFC 8489 §14)', () => {
    for (const [type] of IANA_ATTRIBUTES) assert.equal(isComprehensionRequired(type), type < 0x8000);
    assert.equal(isComprehensionRequired(0x7fff), true);
    assert.equal(isComprehensionRequired(0x8000), false);
    assert.equal(isComprehensionRequired(0xffff), false);
  });

  it('uses the magic cookie 0x2112A442 (RFC 8489 §5)', () => {
    assert.equal(MAGIC_COOKIE, 0x2112a442);
  });
});
