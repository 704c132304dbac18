/**
 * Rendezvous capacity (issue 11): how many registered peers one process holds, what each costs
 * in memory, how many connects a node brokers per second and how fast; and with `--nodes N`,
 * the same with N nodes sharing one Redis (as `natpunch serve --redis` runs them), against one
 * node measured in the same invocation.
 *
 * Each RendezvousServer (default limits) runs alone in a child process (server.ts); simulated
 * peers (clients.ts: bare WebSockets signing real register, intent and accept messages) run in
 * 4 other processes pinned to core 1 (and to cores no node or Redis needs, on a larger machine),
 * each peer from its own 127.x source address, taken in turn (cluster.ts). With N nodes, peer i registers with node i mod N and initiators connect only to
 * targets on other nodes, so every connect crosses the Redis bus. Every child raises its own fd
 * limit (`ulimit -n`, which root may raise to 1048576).
 *
 * Reported, per configuration (1 node; then N nodes):
 * - peers held, and memory per peer: the peers register in two halves; the servers' RSS (and V8
 *   heap) after the second half minus after the first, after two forced GCs, summed over nodes,
 *   divided by the second half's peers: what one more peer costs (the process's share of its
 *   socket included; the kernel's socket buffers are not process memory). Also the average from
 *   idle, which carries fixed costs too: V8's young generation grows once under load (8 to 32 MiB
 *   here) whatever the peer count, a quarter of the average at 10k peers, 0.3 KiB at 100k;
 * - connects brokered per second (intent -> `incoming` -> signed accept -> `punch` to both), per
 *   initiator's node and in total, with a window of connects in flight per client process, and
 *   p50/p99 latency from the initiator sending `connect` to its `punch`;
 * - CPU used while measured, in cores, by each node, Redis and the clients: a node near 1.00 is
 *   the limit, clients near their core's share would mean the bench measures the clients;
 * - with N > 1: total(N nodes) / total(1 node), beside the core count (on a 2-core machine every
 *   node and Redis share core 0, so the ratio shows the cost of the bus, not scaling).
 * Targets: 100k peers at <= 5 KiB each; >= 5k brokered connects/s per node; N=3 >= 2.5x one node.
 * `--profile` writes a CPU profile of node 0 of each configuration and prints where its time went.
 *
 *   node dist/bench/run.js rendezvous [--peers 100000] [--nodes 3] [--duration-ms 5000] [--warmup-ms 3000] [--profile]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Benchmark, BenchmarkContext } from '../benchmark.js';
import { collectProfile, cpuProfileFlags, printProfile } from '../support/cpu-profile.js';
import { type Server, delay, processCpu } from '../support/process.js';
import { type Cluster, type CoreLayout, ask, startCluster } from './cluster.js';

const DEFAULT_PEERS = 10_000;
const CONNECT_WINDOW = 128;
const TARGET_BYTES_PER_PEER = 5 * 1024;
const TARGET_CONNECTS_PER_SECOND = 5_000;
const TARGET_SCALING_3_NODES = 2.5;

interface Memory { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number; newSpace: number; stats: { peers: number; connections: number } }
interface Brokered {
  byNode: { completed: number; latencies: number[] }[]; errors: Record<string, number>; measuredMs: number;
  signing: { presigned: number; live: number }; presignMs: number;
}
interface Rate { connectsPerSecond: number; completed: number; p50: number; p99: number }

function quantile(sorted: readonly number[], q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function rate(completed: number, latencies: number[], measuredMs: number): Rate {
  const sorted = latencies.sort((a, b) => a - b);
  return { connectsPerSecond: completed / (measuredMs / 1000), completed, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) };
}

/** CPU seconds (user + system) used so far by each process. */
function cpuSeconds(processes: Server[]): number[] {
  return processes.map((p) => { const t = processCpu(p.pid); return t.user + t.system; });
}

async function memory(cluster: Cluster, timeoutMs: number): Promise<Memory[]> {
  return Promise.all(cluster.servers.map((s) => ask<Memory>(s, { type: 'memory' }, 'memory', timeoutMs)));
}

/** One configuration: `nodes` nodes, the peers registered, then brokering; everything stopped at the end. */
async function measure(bench: BenchmarkContext, nodes: number, profileDir: string | undefined): Promise<Record<string, unknown>> {
  const peersWanted = bench.options.peers ?? DEFAULT_PEERS;
  const loadBefore = loadavg()[0]!;
  const cluster = await startCluster(join(bench.root, 'dist', 'bench', 'rendezvous'), nodes, peersWanted, profileDir ? cpuProfileFlags(profileDir) : []);
  const stopped = cluster.stop;
  bench.signal.addEventListener('abort', () => void stopped(), { once: true });
  try {
    const before = await memory(cluster, 30_000);
    bench.log(`${nodes} node(s)${cluster.redis ? ` on ${cluster.redis.url}` : ''}: registering ${peersWanted} peers from ${cluster.sourceAddresses} source addresses in ${cluster.clients.length} processes`);
    // Two steps, memory read after each: the second step's growth over its peers is the cost of one
    // more peer (the marginal cost); the whole growth over all peers (the average) also carries the
    // V8 young generation, which grows to its working size under load once, whatever the count.
    const register = async (upTo: number | undefined): Promise<{ peers: number; failed: number; ms: number }[]> =>
      Promise.all(cluster.clients.map((c) => ask<{ peers: number; failed: number; ms: number }>(c, { type: 'register', upTo }, 'registered', 600_000)));
    const firstStep = await register(Math.ceil(peersWanted / cluster.clients.length / 2));
    const middle = await memory(cluster, 60_000);
    const heldMiddle = firstStep.reduce((sum, r) => sum + r.peers, 0);
    const registrations = await register(undefined);
    const held = registrations.reduce((sum, r) => sum + r.peers, 0);
    const failed = [...firstStep, ...registrations].reduce((s, r) => s + r.failed, 0);
    const registerMs = Math.max(...firstStep.map((r) => r.ms)) + Math.max(...registrations.map((r) => r.ms));
    const after = await memory(cluster, 60_000);
    if (process.env['NATPUNCH_BENCH_SNAPSHOT']) bench.log(`heap snapshot: ${(await ask<{ file: string }>(cluster.servers[0]!, { type: 'snapshot' }, 'snapshot', 300_000)).file}`);
    const growth = (from: Memory[], to: Memory[], key: 'rss' | 'heapTotal' | 'heapUsed' | 'external' | 'newSpace'): number => to.reduce((s, m, k) => s + m[key] - from[k]![key], 0);
    const delta = (key: 'rss' | 'heapUsed' | 'external'): number => growth(before, after, key) / held;
    const perPeer = { rss: delta('rss'), heap: delta('heapUsed'), external: delta('external') };
    // No peer registered in the second step (all refused): no cost per added peer to report.
    const added = held - heldMiddle;
    const perAdded = (key: 'rss' | 'heapTotal' | 'heapUsed'): number => (added > 0 ? growth(middle, after, key) / added : NaN);
    const marginal = { rss: perAdded('rss'), heap: perAdded('heapUsed'), heapCommitted: perAdded('heapTotal'), peers: [heldMiddle, held] };
    const newSpace = { before: before.reduce((s, m) => s + m.newSpace, 0), middle: middle.reduce((s, m) => s + m.newSpace, 0), after: after.reduce((s, m) => s + m.newSpace, 0) };
    bench.log(`${held} peers registered in ${(registerMs / 1000).toFixed(1)} s (${failed} failed); nodes hold ${after.map((m) => m.stats.peers).join(' + ')} peers`);

    // Brokering, with the connect window for each client process; CPU sampled over the measured part.
    const { warmupMs, durationMs } = bench.options;
    // Intents and accepts signed ahead for twice the target rate (clients.ts, presign), so that the
    // clients' signing does not limit what the node(s) can show; beyond that the clients sign as they go.
    const presignPerSecond = Math.ceil(2 * TARGET_CONNECTS_PER_SECOND * nodes / cluster.clients.length);
    bench.log(`signing ${presignPerSecond * (warmupMs + durationMs) / 1000} intents and accepts ahead in each client process, then brokering connects for ${(warmupMs + durationMs) / 1000} s (${warmupMs / 1000} s warm-up)`);
    const watched = [...cluster.servers, ...(cluster.redis ? [cluster.redis.server] : []), ...cluster.clients];
    // Brokering starts in every client at once, when all have signed ahead.
    let presigned = 0;
    let allPresigned!: () => void;
    const started = new Promise<void>((resolve) => { allPresigned = resolve; });
    const onPresigned = (message: { type?: string }): void => {
      if (message.type !== 'presigned' || ++presigned < cluster.clients.length) return;
      for (const c of cluster.clients) c.child.send({ type: 'go' });
      allPresigned();
    };
    for (const c of cluster.clients) c.child.on('message', onPresigned);
    const cpuWindow = started.then(() => delay(warmupMs)).then(async () => {
      const start = cpuSeconds(watched);
      await delay(durationMs);
      return cpuSeconds(watched).map((t, i) => (t - start[i]!) / (durationMs / 1000));
    });
    const brokered = await Promise.all(cluster.clients.map((c) => {
      c.child.send({ type: 'window', window: CONNECT_WINDOW });
      return ask<Brokered>(c, { type: 'broker', warmupMs, durationMs, presignPerSecond }, 'brokered', warmupMs + durationMs + 300_000);
    }));
    for (const c of cluster.clients) c.child.off('message', onPresigned);
    const cores = await cpuWindow;
    const measuredMs = Math.max(...brokered.map((b) => b.measuredMs));
    const perNode = cluster.servers.map((_, k) => rate(
      brokered.reduce((s, b) => s + b.byNode[k]!.completed, 0), brokered.flatMap((b) => b.byNode[k]!.latencies), measuredMs));
    const total = rate(perNode.reduce((s, r) => s + r.completed, 0), brokered.flatMap((b) => b.byNode.flatMap((n) => n.latencies)), measuredMs);
    const errors: Record<string, number> = {};
    for (const b of brokered) for (const [code, n] of Object.entries(b.errors)) errors[code] = (errors[code] ?? 0) + n;
    const signing = { presigned: brokered.reduce((s, b) => s + b.signing.presigned, 0), live: brokered.reduce((s, b) => s + b.signing.live, 0), presignMs: Math.max(...brokered.map((b) => b.presignMs)) };
    const cpu = {
      nodes: cores.slice(0, nodes), redis: cluster.redis ? cores[nodes] : undefined, clients: cores.slice(nodes + (cluster.redis ? 1 : 0)),
    };
    const nodeCpu = cpu.nodes.reduce((s, c) => s + c, 0);
    return {
      connectsPerNodeCpuSecond: nodeCpu > 0 ? total.connectsPerSecond / nodeCpu : NaN,
      nodes, cores: cluster.cores, loadAverage: { before: loadBefore, after: loadavg()[0]! },
      peersWanted, peersHeld: held, registerFailed: failed, registerMs, bytesPerPeer: perPeer, marginalBytesPerPeer: marginal, newSpace,
      serverRss: { before: before.map((m) => m.rss), after: after.map((m) => m.rss) }, perNode, total, errors, cpu, signing,
    };
  } finally {
    await cluster.stop();
  }
}

function print(run: Record<string, unknown>): void {
  const r = run as {
    nodes: number; cores: CoreLayout; peersWanted: number; peersHeld: number; registerMs: number; bytesPerPeer: { rss: number; heap: number; external: number };
    marginalBytesPerPeer: { rss: number; heap: number; heapCommitted: number; peers: [number, number] }; newSpace: { before: number; middle: number; after: number };
    serverRss: { before: number[]; after: number[] }; perNode: Rate[]; total: Rate; errors: Record<string, number>;
    cpu: { nodes: number[]; redis: number | undefined; clients: number[] }; loadAverage: { before: number; after: number };
    signing: { presigned: number; live: number; presignMs: number };
  };
  const kib = (bytes: number): string => (bytes / 1024).toFixed(2);
  const mib = (bytes: number[]): string => bytes.map((b) => (b / 2 ** 20).toFixed(0)).join(' + ');
  const line = (x: Rate): string => `${x.connectsPerSecond.toFixed(0).padStart(6)}/s  p50 ${x.p50.toFixed(1)} ms, p99 ${x.p99.toFixed(1)} ms`;
  const where = `${r.nodes === 1 ? 'server' : 'nodes'} on core ${r.cores.nodes.join(', ')}${r.cores.redis === undefined ? '' : `, Redis on core ${r.cores.redis}`}`;
  process.stdout.write(`\nRendezvous, ${r.nodes === 1 ? 'one node' : `${r.nodes} nodes sharing one Redis`} (default limits; ${where}, ${r.cpu.clients.length} client processes on core ${r.cores.clients.join(', ')}; ${cpus().length} CPUs):\n`);
  process.stdout.write(`peers held                 ${r.peersHeld} of ${r.peersWanted} (registered in ${(r.registerMs / 1000).toFixed(1)} s)\n`);
  const m = r.marginalBytesPerPeer;
  process.stdout.write(`memory per peer, RSS       ${kib(m.rss)} KiB  (target <= ${TARGET_BYTES_PER_PEER / 1024} KiB ${m.rss <= TARGET_BYTES_PER_PEER ? '✓' : '✗'}; the peers from ${m.peers[0]} to ${m.peers[1]}); V8 heap ${kib(m.heap)} KiB used, ${kib(m.heapCommitted)} KiB committed\n`);
  process.stdout.write(`  averaged from idle       ${kib(r.bytesPerPeer.rss)} KiB; V8 heap ${kib(r.bytesPerPeer.heap)} KiB, external ${kib(r.bytesPerPeer.external)} KiB (includes the V8 young generation: ${mib([r.newSpace.before])} -> ${mib([r.newSpace.middle])} -> ${mib([r.newSpace.after])} MiB, grown once under load)\n`);
  process.stdout.write(`server RSS                 ${mib(r.serverRss.before)} MiB idle -> ${mib(r.serverRss.after)} MiB with the peers\n`);
  if (r.nodes > 1) r.perNode.forEach((x, k) => process.stdout.write(`connects brokered, node ${k}  ${line(x)}  (initiators registered there)\n`));
  const perNode = r.total.connectsPerSecond / r.nodes;
  process.stdout.write(`connects brokered${r.nodes > 1 ? ', total' : '       '}   ${line(r.total)}  (${r.total.completed} in all; target >= ${TARGET_CONNECTS_PER_SECOND}/s per node ${perNode >= TARGET_CONNECTS_PER_SECOND ? '✓' : '✗'})\n`);
  const cores = (xs: number[]): string => xs.map((c) => c.toFixed(2)).join(' + ');
  process.stdout.write(`CPU while measured (cores) node(s) ${cores(r.cpu.nodes)}${r.cpu.redis === undefined ? '' : `, Redis ${r.cpu.redis.toFixed(2)}`}, clients ${cores(r.cpu.clients)}\n`);
  // Per CPU-second of the nodes: the capacity of a node when something else (here the clients,
  // which sign every intent and accept) kept it from using its whole core.
  const nodeCpu = r.cpu.nodes.reduce((s, c) => s + c, 0);
  const perCpu = nodeCpu > 0 ? r.total.connectsPerSecond / nodeCpu : NaN;
  const busiest = Math.max(...r.cpu.nodes);
  process.stdout.write(`connects per node CPU-s    ${perCpu.toFixed(0).padStart(6)}  (${busiest < 0.95 ? `the node(s) had idle time (busiest ${busiest.toFixed(2)} cores): the clients were the limit, and this is what a node's core brokers` : 'the node was the limit'})\n`);
  process.stdout.write(`intents signed ahead       ${r.signing.presigned} (in ${(r.signing.presignMs / 1000).toFixed(1)} s before brokering), as they went ${r.signing.live}\n`);
  if (Object.keys(r.errors).length) process.stdout.write(`refused connects           ${JSON.stringify(r.errors)}\n`);
  const load = Math.max(r.loadAverage.before, r.loadAverage.after);
  if (load > 0.5) process.stdout.write(`note: 1-minute load average ${r.loadAverage.before.toFixed(2)} before, ${r.loadAverage.after.toFixed(2)} after (on ${cpus().length} CPUs)\n`);
}

async function run(bench: BenchmarkContext): Promise<Record<string, unknown>> {
  const nodes = bench.options.nodes ?? 1;
  const runs: Record<string, unknown>[] = [];
  for (const n of nodes > 1 ? [1, nodes] : [1]) {
    if (bench.signal.aborted) break;
    const profileDir = bench.options.profile ? await mkdtemp(join(tmpdir(), 'natpunch-bench-rendezvous-')) : undefined;
    try {
      runs.push(await measure(bench, n, profileDir));
      print(runs.at(-1)!);
      if (profileDir) {
        const { summary, file } = await collectProfile(profileDir, bench.resultsDir, n === 1 ? 'rendezvous-server' : `rendezvous-node-0-of-${n}`, bench.root);
        printProfile(summary, file, `${n === 1 ? 'one node' : `node 0 of ${n}`}: registration and brokering`);
      }
    } finally {
      if (profileDir) await rm(profileDir, { recursive: true, force: true });
    }
  }
  const totals = runs.map((r) => (r['total'] as Rate).connectsPerSecond);
  const scaling = totals.length > 1 ? totals[1]! / totals[0]! : undefined;
  if (scaling !== undefined) {
    const target = nodes === 3 ? ` (target >= ${TARGET_SCALING_3_NODES} ${scaling >= TARGET_SCALING_3_NODES ? '✓' : '✗'})` : '';
    process.stdout.write(`\n${nodes} nodes / 1 node, connects/s  ${scaling.toFixed(2)}x${target} on ${cpus().length} CPUs`);
    // Fewer cores than nodes + Redis (cluster.ts) means they time-share what one node had alone.
    const layout = runs[1]!['cores'] as CoreLayout;
    const shared = new Set([...layout.nodes, layout.redis]).size;
    process.stdout.write(shared < nodes + 1
      ? `: the ${nodes} nodes and Redis share ${shared} core(s), ${shared === 1 ? 'the one node\'s' : 'fewer than one each'}, so this ratio is the cost of crossing Redis, not scaling\n`
      : `; clients on core(s) ${layout.clients.join(', ')}: if they were near full while measured, they were the limit\n`);
  }
  return {
    benchmark: 'rendezvous', date: new Date().toISOString(), machine: { cpus: cpus().length },
    runs, scaling, targets: { bytesPerPeer: TARGET_BYTES_PER_PEER, connectsPerSecondPerNode: TARGET_CONNECTS_PER_SECOND, scaling3Nodes: TARGET_SCALING_3_NODES },
  };
}

export const benchmark: Benchmark = {
  name: 'rendezvous',
  description: 'rendezvous nodes: peers held, memory per peer (RSS delta / peers), connects brokered per second and p99 latency, 1 node and (--nodes N) N nodes on Redis; targets 100k peers at <= 5 KiB each, >= 5k connects/s per node, 3 nodes >= 2.5x one',
  run,
};
