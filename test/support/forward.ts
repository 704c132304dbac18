/**
 * The forwarding scenario of issue 10, shared by the loopback and the lab test: a service
 * (forward-service.ts) exposed with `natpunch expose`, reached through `natpunch forward` by a
 * client (forward-client.ts) that runs parallel downloads and an interactive session beside
 * them. Each piece runs where the caller says (this machine, or a lab host).
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { natpunch } from './cli.js';
import { eventChild, type EventChild, type JsonEvent } from './json-events.js';
import { ProcessOutput, stopProcess, type Spawner } from './process.js';

export const FORWARD_SERVICE = fileURLToPath(new URL('./forward-service.js', import.meta.url));
export const FORWARD_CLIENT = fileURLToPath(new URL('./forward-client.js', import.meta.url));

export interface ForwardHosts {
  /** Runs the service and `natpunch expose`. */
  exposing: Spawner;
  /** Runs `natpunch forward` and the client. */
  forwarding: Spawner;
}

export interface ClientReport {
  sha256: string[];
  bytes: number[];
  bulkMs: number;
  roundTrips: number[];
  duringBulk: number;
}

export interface ForwardRun {
  expose: EventChild;
  forward: EventChild;
  /** Where forward listens ("127.0.0.1:PORT"). */
  listen: string;
  /** The exposed service's port and the sha256 of its file. */
  service: { port: number; sha256: string };
  /** Run the client against the forwarded port: its report once it has exited 0. */
  client(downloads: number): Promise<ClientReport>;
  stop(): Promise<void>;
}

/** Start the service, expose it, forward to it; resolves once forward is connected and listening. */
export async function startForwarding(hosts: ForwardHosts, serverUrl: string, dir: string, bytes: number, forwardArgs: string[] = []): Promise<ForwardRun> {
  const children: { child: import('node:child_process').ChildProcess }[] = [];
  const stop = async (): Promise<void> => { await Promise.all(children.map(({ child }) => stopProcess(child))); };
  try {
    const serviceOutput = new ProcessOutput(hosts.exposing.spawn([process.execPath, FORWARD_SERVICE, String(bytes)]), 'forward-service');
    children.push(serviceOutput);
    const [serviceLine] = await serviceOutput.waitFor([/"port"/]);
    const service = JSON.parse(serviceLine!) as { port: number; sha256: string };
    const expose = eventChild(hosts.exposing.spawn(natpunch('expose', String(service.port), '--server', serverUrl, '--key', join(dir, 'expose.key'), '--json')), 'expose');
    children.push(expose);
    const { id } = await expose.until((e) => e['event'] === 'ready', 'ready') as { id: string };
    const forward = eventChild(hosts.forwarding.spawn(natpunch('forward', id, '--listen', '127.0.0.1:0', '--server', serverUrl, '--key', join(dir, 'forward.key'), '--json', ...forwardArgs)), 'forward');
    children.push(forward);
    const ready = await forward.until((e) => e['event'] === 'ready', 'ready');
    await forward.until((e) => e['event'] === 'connected', 'connected');
    await expose.until((e) => e['event'] === 'connected', 'connected');
    const listen = String(ready['listen']);
    const client = async (downloads: number): Promise<ClientReport> => {
      const port = listen.slice(listen.lastIndexOf(':') + 1);
      const output = new ProcessOutput(hosts.forwarding.spawn([process.execPath, FORWARD_CLIENT, port, String(downloads)]), 'forward-client');
      children.push(output);
      const text = await output.ended(180_000);
      assert.equal(output.exit, 'exit 0', `the client failed: ${text}\nforward: ${forward.stderr()}\nexpose: ${expose.stderr()}`);
      return JSON.parse(text.split('\n').find((l) => l.startsWith('{"sha256"'))!) as ClientReport;
    };
    return { expose, forward, listen, service, client, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Issue 10's acceptance on a report: every download intact and, given `maxRoundTripMs` (for
 * downloads long enough to hold several round trips), the interactive session answering throughout.
 */
export function assertForwarded(report: ClientReport, service: { sha256: string }, bytes: number, downloads: number, maxRoundTripMs?: number): void {
  assert.equal(report.sha256.length, downloads);
  for (const [i, sha] of report.sha256.entries()) {
    assert.equal(report.bytes[i], bytes, `download ${i}: bytes`);
    assert.equal(sha, service.sha256, `download ${i} differs from the file`);
  }
  if (maxRoundTripMs === undefined) return;
  // Interactive round trips kept completing while the bulk ran (not queued behind it).
  assert.ok(report.duringBulk >= 3, `only ${report.duringBulk} round trips completed during the ${report.bulkMs} ms download: ${JSON.stringify(report.roundTrips)}`);
  const slowest = Math.max(...report.roundTrips);
  assert.ok(slowest <= maxRoundTripMs, `a round trip took ${slowest} ms (bound ${maxRoundTripMs} ms) during a ${report.bulkMs} ms download: ${JSON.stringify(report.roundTrips)}`);
}

export const connectedEvent = (child: EventChild): JsonEvent | undefined => child.events.find((e) => e['event'] === 'connected');
