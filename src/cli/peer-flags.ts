/** Flags, checks and the run shared by the commands that run a peer (listen, connect). */
import { isIPv4, isIPv6 } from 'node:net';
import { UsageError } from '../errors.js';
import { parseServerUrl } from '../rendezvous/server-url.js';
import { readAllowFile } from '../peer/allow-list.js';
import { normalizePeerId } from '../identity/index.js';
import type { Connection, Peer, PeerOptions } from '../peer/peer.js';
import type { Flag } from './args.js';
import { type EventSink, pipeStdio } from './events.js';
import { interrupts } from './interrupts.js';
import { PipeProgress, type ProgressForm } from './pipe-progress.js';
import { exitCodeFor } from './report-error.js';

export const portMappingFlag: Flag = {
  type: 'boolean',
  help: 'ask the router (PCP, NAT-PMP or UPnP-IGD) to forward this peer\'s UDP port, for a direct path through NATs that need one',
  example: '--port-mapping',
};

/** `--bind IP`: PeerOptions.bindAddress, for every command that runs a peer. */
export const bindFlag: Flag = {
  type: 'string', value: 'IP', defaultText: 'every interface, IPv6 too',
  help: 'use only this local IPv4 address: the peer\'s sockets bind to it and it is the only host candidate offered (no IPv6 then); for a host with several networks, or a test on 127.0.0.1',
  example: '--bind 192.168.1.20',
};

/** --bind checked: an IPv4 literal, or undefined when not given. Whether this host has it, bind(2) says. */
export function bindAddress(command: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (isIPv4(value)) return value;
  const why = isIPv6(value) ? 'an IPv6 address (the peer binds IPv4 sockets; leave --bind out to use IPv6 too)' : 'not an IP address';
  throw new UsageError(`natpunch ${command}: --bind ${JSON.stringify(value)} is ${why}; give one of this host's IPv4 addresses, e.g. --bind 127.0.0.1`);
}

/** `--no-report`: PeerOptions.report false, for every command that runs a peer. */
export const noReportFlag: Flag = {
  type: 'boolean',
  help: 'do not tell the rendezvous server how each connection ended (path, technique, time to connect: what its metrics and dashboard count; never addresses or data)',
  example: '--no-report',
};

/** `--allow PEER_ID`: who may connect (listen, receive, expose). */
export const allowFlag: Flag = {
  type: 'string', value: 'PEER_ID', multiple: true, defaultText: 'none: any peer that knows this id may connect',
  help: 'accept only this peer (repeat for several); anyone else is refused before a packet is sent toward it, and told so (ERR_REFUSED)',
  example: '--allow ah4ytbnkeoro34qprv2gqnc5vebpxztoiyafb4bpvnjm4uqycouu6bdq',
};

/** `--allow-file FILE`: the same, from an authorized_keys-like file. */
export const allowFileFlag: Flag = {
  type: 'string', value: 'FILE',
  help: 'accept only the peers listed in FILE: one peer id a line, # starts a comment (like ssh\'s authorized_keys); adds to --allow',
  example: '--allow-file ~/.natpunch/allowed',
};

/** --allow and --allow-file together, or undefined (everyone) when neither is given. */
export async function allowList(command: string, ids: string[] | undefined, file: string | undefined): Promise<string[] | undefined> {
  if (ids === undefined && file === undefined) return undefined;
  const list: string[] = [];
  for (const id of ids ?? []) {
    try {
      list.push(normalizePeerId(id));
    } catch (error) {
      throw new UsageError(`natpunch ${command}: --allow: ${(error as Error).message}`);
    }
  }
  if (file !== undefined) {
    try {
      list.push(...await readAllowFile(file));
    } catch (error) {
      throw new UsageError(`natpunch ${command}: ${(error as Error).message}`);
    }
  }
  return list;
}

/**
 * --server, present, each a ws:// or wss:// URL, or a UsageError naming the command (`usage`: its
 * usageText). Given more than once (nodes sharing one registry, `serve --redis`), the peer
 * registers at the first that answers and moves on when its node goes away.
 */
export function checkServer(command: string, server: string | readonly string[] | undefined, usage: string): string[] {
  const servers = typeof server === 'string' ? [server] : [...(server ?? [])];
  if (servers.length === 0) throw new UsageError(`natpunch ${command}: --server URL is required (the rendezvous server, e.g. ws://HOST:8080/).\n${usage}`);
  for (const url of servers) {
    try {
      parseServerUrl(url);
    } catch (error) {
      throw new UsageError(`natpunch ${command}: ${(error as Error).message}`);
    }
  }
  return servers;
}

/** A failure already reported (an error event, then the connection's closed summary). */
export class Reported extends Error {
  constructor(readonly error: unknown) {
    super('reported');
  }
}

/**
 * Pipe stdin/stdout through `connection` until both directions end; then report how it ended:
 * an error event if it failed (the interrupt, if that was the cause), then the closed summary, in
 * that order. Resolves with the failure, or undefined when it ended cleanly.
 */
export async function serveConnection(events: EventSink, connection: Connection, signal: AbortSignal, progress?: ProgressForm): Promise<unknown> {
  let failure: unknown;
  const shown = progress === undefined ? undefined : new PipeProgress(connection, { form: progress }).start();
  try {
    await pipeStdio(connection, signal);
  } catch (error) {
    failure = error;
    shown?.stop();
    events.error(signal.aborted ? signal.reason : error);
  }
  shown?.stop();
  events.closed(connection);
  return failure;
}

/** `--progress` (connect, listen): bytes and rates as the connection goes. */
export const progressFlag: Flag = {
  type: 'boolean',
  help: 'show bytes and rate each way and the path in use while connected: a line redrawn on a terminal, a progress event a second with --json, else a line every 10 s',
  example: '--progress',
};

/** Which form --progress takes here, or undefined without it. */
export function progressForm(wanted: unknown, json: boolean): ProgressForm | undefined {
  if (wanted !== true) return undefined;
  return json ? 'json' : process.stderr.isTTY ? 'tty' : 'log';
}

/**
 * createPeer, loaded when a command starts a peer: the peer stack is most of the CLI's modules,
 * and `natpunch help`, `id`, `serve` and every usage error never need it.
 */
export async function startPeer(options: PeerOptions): Promise<Peer> {
  const { createPeer } = await import('../peer/peer.js');
  return createPeer(options);
}

/**
 * Run a command around a peer: created with the interrupt signal (Ctrl-C during registration
 * stops it too), closed at the end whatever happened. A failure is reported once as an error
 * event; the exit code is the signal's (130, 143) when interrupted, else 1 (2 for usage).
 */
export async function withPeer(events: EventSink, options: Omit<PeerOptions, 'signal'>, body: (peer: Peer, signal: AbortSignal) => Promise<number>): Promise<number> {
  const stop = interrupts();
  let peer: Peer | undefined;
  try {
    peer = await startPeer({ ...options, signal: stop.signal });
    return await body(peer, stop.signal);
  } catch (error) {
    // Interrupted: say so, whatever the operation under way made of the abort.
    if (!(error instanceof Reported)) events.error(stop.exitCode !== undefined ? stop.signal.reason : error);
    return stop.exitCode ?? exitCodeFor(error instanceof Reported ? error.error : error);
  } finally {
    await peer?.close();
    stop.dispose();
    process.stdin.destroy();
  }
}
