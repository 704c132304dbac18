/**
 * bench/stun-attack: legitimate STUN Binding latency (UDP, and TCP with a new connection per
 * Binding) from 127.0.0.2 to `natpunch serve` on loopback, quiet and then while the attacks of
 * issue 11 run from 127.0.0.1 (bench/stun-attack/attacker.ts: a UDP flood of erroneous
 * Bindings, TCP clients that never read, a TCP slowloris holding more than every slot).
 * Reported: p50 and p99 of each, and attacked/quiet as a ratio, both measured in the same run
 * against the same server process with its default limits (docs/decisions/014-server-limits.md).
 */
import dgram from 'node:dgram';
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Benchmark, BenchmarkContext } from '../benchmark.js';
import { Server, delay, freePort } from '../support/process.js';
import { formatTable } from '../support/table.js';
import { StunUdpClient } from '../../src/stun/udp-client.js';
import { StunTcpClient } from '../../src/stun/tcp-client.js';

const LEGIT = '127.0.0.2';

interface Latencies { udp: number[]; tcp: number[]; udpLost: number; tcpFailed: number }

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]! : NaN;
}

async function sample(port: number, durationMs: number, signal: AbortSignal): Promise<Latencies> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, LEGIT, resolve));
  // One transmission with a 1 s wait: a lost answer counts as lost, not as a 4 s retransmission.
  const udp = new StunUdpClient(socket, { retransmission: { rto: 1000, rc: 1, rm: 1 } });
  const out: Latencies = { udp: [], tcp: [], udpLost: 0, tcpFailed: 0 };
  const to = { family: 4 as const, address: '127.0.0.1', port };
  const end = performance.now() + durationMs;
  try {
    while (performance.now() < end && !signal.aborted) {
      let started = performance.now();
      try {
        await udp.request(to);
        out.udp.push(performance.now() - started);
      } catch {
        out.udpLost++;
      }
      started = performance.now();
      try {
        const tcp = await StunTcpClient.connect(to, { localAddress: LEGIT, timeoutMs: 5000 });
        try {
          await tcp.request();
          out.tcp.push(performance.now() - started);
        } finally {
          tcp.close();
        }
      } catch {
        out.tcpFailed++;
      }
      await delay(20, signal);
    }
  } finally {
    // The client does not own the socket it was given: close both, or the process never exits.
    udp.close();
    socket.close();
  }
  return out;
}

async function run(bench: BenchmarkContext): Promise<Record<string, unknown>> {
  const { durationMs, warmupMs } = bench.options;
  const port = await freePort();
  const http = String(await freePort());
  const cli = join(bench.root, 'dist', 'src', 'cli', 'main.js');
  const server = new Server('natpunch', (await import('node:child_process')).spawn(process.execPath,
    [cli, 'serve', '--address', '127.0.0.1', '--port', String(port), '--http-port', http, '--no-relay'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let attacker: Server | undefined;
  try {
    await server.lineMatching(/\bready\b/, 20_000);
    bench.log('quiet');
    const quiet = await sample(port, durationMs, bench.signal);
    attacker = new Server('attacker', (await import('node:child_process')).spawn(process.execPath,
      [join(bench.root, 'dist', 'bench', 'stun-attack', 'attacker.js'), String(port)], { stdio: ['ignore', 'pipe', 'pipe'] }));
    await delay(Math.max(warmupMs, 3000), bench.signal); // the slowloris fills every slot first
    bench.log('under attack');
    const attacked = await sample(port, durationMs, bench.signal);
    const rows = (['udp', 'tcp'] as const).flatMap((kind) => [0.5, 0.99].map((q) => {
      const a = quantile(quiet[kind], q);
      const b = quantile(attacked[kind], q);
      return [`${kind.toUpperCase()} p${q * 100}`, `${a.toFixed(2)} ms`, `${b.toFixed(2)} ms`, `${(b / a).toFixed(1)}×`];
    }));
    rows.push(['UDP lost / TCP failed', `${quiet.udpLost} / ${quiet.tcpFailed} of ${quiet.udp.length + quiet.udpLost}`, `${attacked.udpLost} / ${attacked.tcpFailed} of ${attacked.udp.length + attacked.udpLost}`, '']);
    process.stdout.write(`\nLegitimate Binding latency from ${LEGIT}, quiet vs under attack (natpunch serve, default limits):\n`);
    process.stdout.write(formatTable(['', 'quiet', 'attacked', 'ratio'], rows) + '\n');
    const summary = (l: Latencies): Record<string, number> => ({
      udpP50: quantile(l.udp, 0.5), udpP99: quantile(l.udp, 0.99), tcpP50: quantile(l.tcp, 0.5), tcpP99: quantile(l.tcp, 0.99),
      udpSamples: l.udp.length, udpLost: l.udpLost, tcpSamples: l.tcp.length, tcpFailed: l.tcpFailed,
    });
    return { benchmark: 'stun-attack', date: new Date().toISOString(), machine: { cpus: cpus().length, loadAverage: loadavg()[0] }, quiet: summary(quiet), attacked: summary(attacked) };
  } finally {
    await attacker?.stop();
    await server.stop();
  }
}

export const benchmark: Benchmark = {
  name: 'stun-attack',
  description: 'legitimate UDP and TCP Binding latency (p50, p99) under a UDP flood, TCP non-readers and a TCP slowloris, against the same latencies quiet in the same run',
  run,
};
