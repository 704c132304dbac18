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

/** The child's own waits are bounded by 20 s each; this is the net over all of them. */
const CHILD_TIMEOUT_MS = 60_000;

/**
 * Runs tcp-punch-child.js `scenario` in `unshare -n` (the namespace dies with the process) and
 * returns its JSON line. `unshare` and `sh` exec in place, so the child is node itself: killed
 * (SIGKILL) after CHILD_TIMEOUT_MS, it takes its namespace with it.
 */
export function runInPrivateLoopback(scenario: 'punch' | 'peers'): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const argv = ['-n', 'sh', '-c', `${SETUP} && exec "${process.execPath}" "${CHILD}" ${scenario}`];
    execFile('unshare', argv, { timeout: CHILD_TIMEOUT_MS, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as Record<string, unknown>);
      } catch {
        const why = error?.killed === true ? `killed after ${CHILD_TIMEOUT_MS} ms without printing its JSON line` : error?.message ?? 'no JSON';
        reject(new Error(`${scenario} in a private namespace: ${why}\nstdout: ${stdout}\nstderr: ${stderr}`));
      }
    });
  });
}
