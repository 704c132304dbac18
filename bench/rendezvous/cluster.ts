/**
 * The processes of one rendezvous measurement: N server nodes (server.ts; with N > 1 sharing a
 * redis-server started here), and the client processes (clients.ts) that simulate the peers.
 * Each node, then Redis, gets a core of its own other than LOAD_CORE while there are enough
 * (otherwise they time-share the cores there are: on a 2-core machine all of them share core 0,
 * which is why N nodes there cannot outrun one); the clients get LOAD_CORE and any cores left.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { BenchError, LOAD_CORE, Server, pinned } from '../support/process.js';
import { type BenchRedis, startRedis } from '../support/redis-server.js';

const PER_ADDRESS = 200;
const CLIENT_PROCESSES = 4;
const REGISTER_WINDOW = 64;

export interface Cluster {
  servers: Server[];
  redis: BenchRedis | undefined;
  clients: Server[];
  /** Where each process is pinned. */
  cores: CoreLayout;
  sourceAddresses: number;
  stop(): Promise<void>;
}

export interface CoreLayout {
  nodes: number[];
  redis: number | undefined;
  clients: number[];
}

/** Nodes, then Redis, on cores other than LOAD_CORE, one each while they last; clients on LOAD_CORE and the rest. */
function coreLayout(nodes: number): CoreLayout {
  const others = Array.from({ length: cpus().length }, (_, i) => i).filter((c) => c !== LOAD_CORE);
  const wanted = nodes + (nodes > 1 ? 1 : 0);
  const serverSide = others.length === 0 ? [0] : others.slice(0, wanted);
  return {
    nodes: Array.from({ length: nodes }, (_, k) => serverSide[k % serverSide.length]!),
    redis: nodes > 1 ? serverSide[nodes % serverSide.length] : undefined,
    clients: [LOAD_CORE, ...others.slice(wanted)],
  };
}

/** `command args` under bash with the fd limit raised first (as high as allowed: root gets 1048576). */
function withFdLimit(command: string, args: string[]): [string, string[]] {
  const script = 'ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"';
  return ['bash', ['-c', script, 'bash', command, ...args]];
}

function start(name: string, core: number, script: string, args: string[], node: string[] = []): Server {
  const [command, argv] = pinned(core, ...withFdLimit(process.execPath, [...node, script, ...args]));
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  child.on('error', () => undefined);
  return new Server(name, child);
}

/** Sends `message` and resolves with the child's next IPC message of `type` (or fails when it exits). */
export async function ask<T>(server: Server, message: Record<string, unknown>, type: string, timeoutMs: number): Promise<T> {
  const child = server.child;
  const answer = new Promise<T>((resolve) => {
    const listener = (reply: { type: string }): void => {
      if (reply.type !== type) return;
      child.off('message', listener);
      resolve(reply as T);
    };
    child.on('message', listener);
  });
  child.send(message);
  const signal = AbortSignal.timeout(timeoutMs);
  const exited = once(child, 'exit', { signal }).then(() => { throw new BenchError(`${server.name}: exited while asked for ${type}; output:\n${server.output}`); });
  try {
    return await Promise.race([answer, exited]);
  } catch (error) {
    if (signal.aborted) throw new BenchError(`${server.name}: no ${type} within ${timeoutMs} ms; output:\n${server.output}`, { cause: error });
    throw error;
  }
}

/** 127.1.0.1, 127.1.0.2, ...: source addresses on loopback (all of 127.0.0.0/8 is local). */
function addresses(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`);
}

/**
 * Starts `nodes` servers (and their Redis when nodes > 1), then the client processes for `peers`
 * peers spread over the nodes. `serverFlags`: extra node flags for node 0 (a CPU profile).
 * On failure everything started is stopped before the error is thrown.
 */
export async function startCluster(dist: string, nodes: number, peers: number, serverFlags: string[] = []): Promise<Cluster> {
  const cores = coreLayout(nodes);
  const servers: Server[] = [];
  const clients: Server[] = [];
  let redis: BenchRedis | undefined;
  const stop = async (): Promise<void> => {
    // Clients first (their sockets close), then the nodes (their last Redis commands), then Redis.
    await Promise.all(clients.map((c) => c.stop()));
    await Promise.all(servers.map((s) => s.stop()));
    await redis?.server.stop();
  };
  try {
    if (cores.redis !== undefined) redis = await startRedis(cores.redis);
    for (let k = 0; k < nodes; k++) {
      const config = redis ? { redis: { url: redis.url, node: `bench-node-${k}`, prefix: 'natpunch-bench:' } } : {};
      servers.push(start(`rendezvous node ${k}`, cores.nodes[k]!, join(dist, 'server.js'), [JSON.stringify(config)],
        ['--expose-gc', ...(k === 0 ? serverFlags : [])]));
    }
    const urls = await Promise.all(servers.map(async (s) => (await s.lineMatching(/^ready /, 20_000)).slice('ready '.length).trim()));
    const sources = addresses(Math.ceil(peers / PER_ADDRESS));
    const perProcess = Math.ceil(peers / CLIENT_PROCESSES);
    for (let p = 0; p < CLIENT_PROCESSES; p++) {
      const first = p * perProcess;
      const count = Math.min(perProcess, peers - first);
      if (count <= 0) break;
      const config = { urls, first, count, addresses: sources, perAddress: PER_ADDRESS, window: REGISTER_WINDOW };
      clients.push(start(`clients ${p}`, cores.clients[p % cores.clients.length]!, join(dist, 'clients.js'), [JSON.stringify(config)]));
    }
    return { servers, redis, clients, cores, sourceAddresses: sources.length, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
