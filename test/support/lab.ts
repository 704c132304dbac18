import type { TestContext } from 'node:test';
import { labSupport } from '../../src/lab/index.js';

/** Skip a lab test with a printed reason where the lab cannot run (not root, no nft, ...). CI runs them. */
export function skipUnlessLab(t: TestContext): boolean {
  const support = labSupport();
  if (support.ok) return false;
  const reason = `lab unavailable: ${support.reason}`;
  console.log(`# SKIP ${t.name}: ${reason}`);
  t.skip(reason);
  return true;
}
