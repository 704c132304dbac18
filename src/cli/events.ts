import { finished } from 'node:stream/promises';
import { performance } from 'node:perf_hooks';
import type { PortMapError } from '../errors.js';
import type { PortMappingInfo } from '../portmap/index.js';
import type { Connection, KeepaliveInfo } from '../peer/peer.js';
import type { PathInfo, StandbyInfo } from '../peer/connection.js';
import type { RendezvousError } from '../rendezvous/errors.js';
import type { DisconnectInfo, ReconnectInfo } from '../rendezvous/reconnecting-client.js';
import { errorEvent, errorLine } from './report-error.js';

/** The `--json` event stream of listen/connect: one JSON object per line on stderr (the contract). */
/** What expose/forward add to their ready event: JSON fields, and the line people read instead of listen's. */
export interface ReadyDetails {
  fields?: Record<string, unknown>;
  text?: string;
}

export interface EventSink {
  ready(id: string, details?: ReadyDetails): void;
  /** Connected; every later change of path is reported too ('path', with its reason). */
  connected(connection: Connection): void;
  error(error: unknown): void;
  /**
   * A connection that was `connected` ended (cleanly or not): bytes each way, its path and how
   * long it lasted; `{"event":"closed",...}` under --json, a line of text otherwise.
   */
  closed(connection: Connection): void;
  /** A peer not on the allow-list was refused (listen). */
  refused(peerId: string, reason: string): void;
  info(text: string): void;
  /** The UDP keepalive's interval or the measured mapping lifetime changed (listen). */
  keepalive(info: KeepaliveInfo): void;
  /** The kept STUN/TCP connection was reopened with a new TCP mapping (listen). */
  tcpMapping(mapped: string): void;
  /** The registration at the rendezvous server was lost; retryInMs null: for good (listen). */
  disconnected(reason: RendezvousError, info: DisconnectInfo): void;
  /** Registered again after a disconnection (listen). */
  reconnected(info: ReconnectInfo): void;
  /** The gateway mapped the peer's UDP port (--port-mapping), or it moved on renewal. */
  portMapping(info: PortMappingInfo): void;
  /** --port-mapping found no usable mapping, or lost it: the peer goes on without it. */
  portMappingFailed(error: PortMapError): void;
}

/** When each connection was reported connected: the summary's duration counts from there. */
const connectedAt = new WeakMap<Connection, number>();

/** What the closed event and the summary line report. */
function closedFields(c: Connection): { peer: string; sent: number; received: number; path: string; durationMs: number } {
  const started = connectedAt.get(c) ?? performance.now();
  const { bytesSent, bytesReceived } = c.stats;
  return { peer: c.remotePeerId, sent: bytesSent, received: bytesReceived, path: pathOf(c), durationMs: Math.round(performance.now() - started) };
}

/** The connection's last path (its manager may be gone once it closed). */
function pathOf(c: Connection): string {
  try {
    return c.path;
  } catch {
    return 'closed';
  }
}

export function eventSink(json: boolean): EventSink {
  const emit = (event: Record<string, unknown>): void => { process.stderr.write(JSON.stringify(event) + '\n'); };
  if (json) {
    return {
      ready: (id, details) => emit({ event: 'ready', id, ...details?.fields }),
      closed: (c) => emit({ event: 'closed', ...closedFields(c) }),
      refused: (peer, reason) => emit({ event: 'refused', peer, reason }),
      connected: (c) => {
        connectedAt.set(c, performance.now());
        emit({ event: 'connected', peer: c.remotePeerId, path: c.path, technique: c.technique, remote: c.remote, ms: c.ms });
        const fields = (p: StandbyInfo): Record<string, unknown> => ({ peer: c.remotePeerId, path: p.path, technique: p.technique, remote: p.remote, ...(p.rttMs !== undefined ? { rttMs: p.rttMs } : {}) });
        c.on('path', (p: PathInfo) => emit({ event: 'path', ...fields(p), reason: p.reason }));
        c.on('standby', (p: StandbyInfo) => emit({ event: 'standby', ...fields(p) }));
      },
      error: (e) => emit(errorEvent(e)),
      info: () => undefined,
      keepalive: (k) => emit({
        event: 'keepalive', intervalMs: k.intervalMs, lifetimeSeconds: k.lifetime?.aliveSeconds ?? null,
        expiredSeconds: k.lifetime?.expiredSeconds ?? null, final: k.lifetime?.final ?? false, reason: k.reason,
      }),
      tcpMapping: (mapped) => emit({ event: 'tcp-mapping', mapped }),
      disconnected: (reason, info) => emit({ event: 'disconnected', reason: reason.reason, message: reason.message, retryInMs: info.retryInMs }),
      reconnected: (info) => emit({ event: 'reconnected', srflx: info.srflx, attempts: info.attempts, downMs: info.downMs }),
      portMapping: (m) => emit({ event: 'port-mapping', method: m.method, external: `${m.externalAddress}:${m.externalPort}`, internalPort: m.internalPort, gateway: m.gateway, lifetimeSeconds: m.lifetimeSeconds }),
      portMappingFailed: (e) => emit({ event: 'port-mapping-failed', reason: e.reason, message: e.message }),
    };
  }
  // On a terminal a line starts by clearing whatever --progress drew there.
  const say = (text: string): void => { process.stderr.write(`${process.stderr.isTTY ? '\r\x1b[K' : ''}natpunch: ${text}\n`); };
  return {
    ready: (id, details) => say(details?.text ?? `listening as ${id}\n  (on the other machine: natpunch connect ${id} --server URL)`),
    closed: (c) => {
      const f = closedFields(c);
      say(`closed: sent ${bytes(f.sent)}, received ${bytes(f.received)} over ${f.path} in ${(f.durationMs / 1000).toFixed(1)} s`);
    },
    refused: (peer, reason) => say(`refused a connection from ${peer}: ${reason}`),
    connected: (c) => {
      connectedAt.set(c, performance.now());
      say(`connected to ${c.remotePeerId} — ${c.path} via ${c.technique}, ${c.remote}, in ${c.ms} ms (end-to-end encrypted)`);
      c.on('path', (p: PathInfo) => say(`path changed (${p.reason}): now ${p.path} via ${p.technique}, ${p.remote}`));
      c.on('standby', (p: StandbyInfo) => say(`standby path ready: ${p.path} via ${p.technique}, ${p.remote} (used if the current one fails)`));
    },
    error: (e) => process.stderr.write(errorLine(e) + '\n'),
    info: say,
    keepalive: (() => {
      let shown: number | undefined;
      return (k: KeepaliveInfo): void => {
        if (k.intervalMs === shown) return;
        shown = k.intervalMs;
        if (k.reason === 'default' && !k.lifetime) return; // nothing learnt yet
        const why = k.reason === 'mapping-changed' ? 'the NAT mapping moved between keepalives'
          : k.lifetime?.expiredSeconds != null ? `idle UDP mappings here die within ${k.lifetime.expiredSeconds} s`
            : k.lifetime?.aliveSeconds != null ? `idle UDP mappings here live at least ${k.lifetime.aliveSeconds} s` : 'default';
        say(`keepalive every ${(k.intervalMs / 1000).toFixed(1)} s (${why})`);
      };
    })(),
    tcpMapping: (mapped) => say(`the kept TCP connection to the rendezvous server was reopened; TCP mapping now ${mapped}`),
    disconnected: (reason, info) => say(`lost the rendezvous server (${reason.message}); ${info.retryInMs === null
      ? 'not reconnecting: peers cannot reach this one any more'
      : `registering again in ${(info.retryInMs / 1000).toFixed(1)} s (connections already open go on)`}`),
    portMapping: (m) => say(`the router forwards ${m.externalAddress}:${m.externalPort} to this peer's UDP port ${m.internalPort} (${m.method}, renewed every ${Math.round(m.lifetimeSeconds / 2)} s)`),
    portMappingFailed: (e) => say(`no port mapping (${e.reason}): ${e.message}`),
    reconnected: (info) => say(`registered again at the rendezvous server after ${(info.downMs / 1000).toFixed(1)} s (${info.attempts} attempt${info.attempts === 1 ? '' : 's'})${info.srflx ? `; public address ${info.srflx}` : ''}`),
  };
}

/**
 * Pipe stdin to the connection and the connection to stdout. Resolves when both directions have
 * ended (our end acknowledged by the peer, theirs received); rejects if the connection fails or
 * closes before that, so a dead peer is an error, never a hang.
 */
export async function pipeStdio(connection: Connection, signal: AbortSignal): Promise<void> {
  // An interrupt aborts the connection: the peer sees ERR_PEER_ABORTED at once (stream RESET).
  const onAbort = (): void => connection.abort(`${(signal.reason as Error | undefined)?.message ?? 'aborted'}: the connection to ${connection.remotePeerId} was aborted`);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  try {
    process.stdin.pipe(connection, { end: true });
    connection.pipe(process.stdout, { end: false });
    await finished(connection);
  } finally {
    signal.removeEventListener('abort', onAbort);
    process.stdin.unpipe(connection);
  }
}

/** 1234567 → "1.2 MB (1234567 bytes)"; small counts as they are. */
function bytes(n: number): string {
  if (n < 10_000) return `${n} bytes`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit++; }
  return `${value.toFixed(1)} ${units[unit]} (${n} bytes)`;
}
