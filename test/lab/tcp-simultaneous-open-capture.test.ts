import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { withLab, type Lab } from '../../src/lab/index.js';
import { skipUnlessLab } from '../support/lab.js';
import { startServe, transfer } from '../support/peers.js';
import { ProcessOutput, skipUnlessInstalled } from '../support/process.js';

/**
 * Acceptance (issue 4): a packet capture shows TCP simultaneous open (RFC 9293 §3.5, figure 8)
 * during `--transport tcp` through two port-restricted NATs: on one host, a SYN leaves from
 * port L to the peer's public endpoint and a SYN (no ACK) arrives on that same 4-tuple, and
 * only then a SYN-ACK. (Which host sees it depends on whose SYN the far NAT dropped first, so
 * both clients are captured, and at least one must show it.)
 */

interface Segment {
  src: string;
  dst: string;
  flags: string;
}

/** `tcpdump -n` lines: "IP 10.0.1.2.40001 > 203.0.113.20.40002: Flags [S], seq ...". */
function parseSegments(text: string): Segment[] {
  const segments: Segment[] = [];
  for (const line of text.split('\n')) {
    const m = /IP (\d+\.\d+\.\d+\.\d+\.\d+) > (\d+\.\d+\.\d+\.\d+\.\d+): Flags \[([^\]]+)\]/.exec(line);
    if (m) segments.push({ src: m[1]!, dst: m[2]!, flags: m[3]! });
  }
  return segments;
}

/** The 4-tuples (as "local > remote") on which a SYN went out, a SYN came in, and then a SYN-ACK was seen. */
function simultaneousOpens(segments: readonly Segment[], localAddress: string): string[] {
  const found: string[] = [];
  const outgoingSyns = segments.filter((s) => s.flags === 'S' && s.src.startsWith(`${localAddress}.`));
  for (const out of outgoingSyns) {
    const outAt = segments.indexOf(out);
    const inAt = segments.findIndex((s) => s.flags === 'S' && s.src === out.dst && s.dst === out.src);
    if (inAt < 0) continue;
    const synAckAt = segments.findIndex((s, i) => i > Math.max(outAt, inAt) && s.flags === 'S.' &&
      ((s.src === out.src && s.dst === out.dst) || (s.src === out.dst && s.dst === out.src)));
    if (synAckAt >= 0) found.push(`${out.src} > ${out.dst}`);
  }
  return [...new Set(found)];
}

/** tcpdump in a lab host, capturing TCP to and from `peerPublic`; resolves once it is listening. */
async function startCapture(lab: Lab, host: string, peerPublic: string): Promise<{ child: ChildProcess; output: ProcessOutput }> {
  const child = lab.hosts[host]!.spawn(['tcpdump', '-l', '-n', '-i', 'any', `tcp and host ${peerPublic}`]);
  const output = new ProcessOutput(child, `tcpdump in ${host}`);
  await output.waitFor([/listening on/]);
  return { child, output };
}

/** SIGINT makes tcpdump flush and exit; wait for it (bounded), so its last lines are read. */
function stopCapture(capture: { child: ChildProcess; output: ProcessOutput }): Promise<string> {
  return capture.output.interrupt();
}

test('a packet capture shows the simultaneous-open sequence: SYN out from L, SYN in to L, then SYN-ACK', { timeout: 180_000 }, async (t) => {
  if (skipUnlessLab(t) || skipUnlessInstalled(t, ['tcpdump'], 'apt-get install tcpdump')) return;
  await withLab({ a: { kind: 'port-restricted' }, b: { kind: 'port-restricted' } }, async (lab) => {
    await startServe(lab);
    const aPublic = lab.routers['a']!.wanAddress;
    const bPublic = lab.routers['b']!.wanAddress;
    const captures = { a1: await startCapture(lab, 'a1', bPublic), b1: await startCapture(lab, 'b1', aPublic) };
    const { connector } = await transfer(lab, 'b1', 'a1', 64 * 1024, ['--transport', 'tcp']);
    assert.equal(connector.path, 'direct-tcp');
    const texts = { a1: await stopCapture(captures.a1), b1: await stopCapture(captures.b1) };
    const opens = {
      a1: simultaneousOpens(parseSegments(texts.a1), lab.hosts['a1']!.addresses[0]!),
      b1: simultaneousOpens(parseSegments(texts.b1), lab.hosts['b1']!.addresses[0]!),
    };
    assert.ok(opens.a1.length + opens.b1.length > 0,
      `no host saw SYN out, SYN in, then SYN-ACK on one 4-tuple;\na1 captured:\n${texts.a1}\nb1 captured:\n${texts.b1}`);
    // The local port of that 4-tuple is L: the one the peer's connected socket used (and signed).
    t.diagnostic(`simultaneous open seen on ${JSON.stringify(opens)}`);
  });
});
