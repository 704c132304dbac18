import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { labSupport } from '../../src/lab/index.js';

const CHILD = fileURLToPath(new URL('./tcp-punch-child.js', import.meta.url));

/**
 * Loopback alone cannot show a simultaneous open: a SYN to a port nobody listens on is answered
 * with RST inside the same connect() call, so two connects never overlap. In a private network
 * namespace whose outgoing RSTs are dropped, the first SYN stays unanswered (as at a NAT that
 * drops unsolicited SYNs) and meets the other side's connect. Needs root and nft, like the lab.
 */
const SETUP = [
  'ip link set lo up',
  'ip addr add 127.0.0.2/8 dev lo 2>/dev/null || true',
  'nft add table inet natpunch_test',
  'nft add chain inet natpunch_test out "{ type filter hook output priority 0; }"',
  'nft add rule inet natpunch_test out "tcp flags & rst != 0 drop"',
].join(' && ');

export function skipUnlessNetns(t: TestContext): boolean {
  const support = labSupport();
  if (support.ok) return false;
  t.skip(`needs a private network namespace: ${support.reason}`);
  return true;
}

/** Runs tcp-punch-child.js `scenario` in `unshare -n` (the namespace dies with the process) and returns its JSON line. */
export function runInPrivateLoopback(scenario: 'punch' | 'peers'): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile('unshare', ['-n', 'sh', '-c', `${SETUP} && exec "${process.execPath}" "${CHILD}" ${scenario}`], { timeout: 60_000 }, (error, stdout, stderr) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as Record<string, unknown>);
      } catch {
        reject(new Error(`${scenario} in a private namespace: ${error?.message ?? 'no JSON'}\n${stdout}\n${stderr}`));
      }
    });
  });
}
