/** Flags, checks and the run shared by the commands that run a peer (listen, connect). */
import { UsageError } from '../errors.js';
import { parseServerUrl } from '../rendezvous/server-url.js';
import { createPeer, type Peer, type PeerOptions } from '../peer/peer.js';
import type { Flag } from './args.js';
import type { EventSink } from './events.js';
import { interrupts } from './interrupts.js';
import { exitCodeFor } from './report-error.js';

export const portMappingFlag: Flag = {
  type: 'boolean',
  help: 'ask the router (PCP, NAT-PMP or UPnP-IGD) to forward this peer\'s UDP port, for a direct path through NATs that need one',
  example: '--port-mapping',
};

/** --server, present and a ws:// or wss:// URL, or a UsageError naming the command. */
export function checkServer(command: string, server: string | undefined, usage: string): string {
  if (!server) throw new UsageError(`natpunch ${command}: --server URL is required (the rendezvous server, e.g. ws://HOST:8080/).\nusage: ${usage}`);
  try {
    parseServerUrl(server);
  } catch (error) {
    throw new UsageError(`natpunch ${command}: ${(error as Error).message}`);
  }
  return server;
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
    peer = await createPeer({ ...options, signal: stop.signal });
    return await body(peer, stop.signal);
  } catch (error) {
    // Interrupted: say so, whatever the operation under way made of the abort.
    events.error(stop.exitCode !== undefined ? stop.signal.reason : error);
    return stop.exitCode ?? exitCodeFor(error);
  } finally {
    await peer?.close();
    stop.dispose();
    process.stdin.destroy();
  }
}
