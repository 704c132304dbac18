import { finished } from 'node:stream/promises';
import { NatpunchError, type PortMapError } from '../errors.js';
import type { PortMappingInfo } from '../portmap/index.js';
import type { Connection, KeepaliveInfo } from '../peer/peer.js';
import type { PathInfo, StandbyInfo } from '../peer/connection.js';
import type { RendezvousError } from '../rendezvous/errors.js';
import type { DisconnectInfo, ReconnectInfo } from '../rendezvous/reconnecting-client.js';

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

export function eventSink(json: boolean): EventSink {
  const emit = (event: Record<string, unknown>): void => { process.stderr.write(JSON.stringify(event) + '\n'); };
  if (json) {
    return {
      ready: (id, details) => emit({ event: 'ready', id, ...details?.fields }),
      connected: (c) => {
        emit({ event: 'connected', peer: c.remotePeerId, path: c.path, technique: c.technique, remote: c.remote, ms: c.ms });
        const fields = (p: StandbyInfo): Record<string, unknown> => ({ peer: c.remotePeerId, path: p.path, technique: p.technique, remote: p.remote, ...(p.rttMs !== undefined ? { rttMs: p.rttMs } : {}) });
        c.on('path', (p: PathInfo) => emit({ event: 'path', ...fields(p), reason: p.reason }));
        c.on('standby', (p: StandbyInfo) => emit({ event: 'standby', ...fields(p) }));
      },
      error: (e) => emit({ event: 'error', code: NatpunchError.is(e) ? e.code : 'ERR_UNEXPECTED', message: (e as Error)?.message ?? String(e) }),
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
  const say = (text: string): void => { process.stderr.write(`natpunch: ${text}\n`); };
  return {
    ready: (id, details) => say(details?.text ?? `listening as ${id}\n  (on the other machine: natpunch connect ${id} --server URL)`),
    connected: (c) => {
      say(`connected to ${c.remotePeerId} — ${c.path} via ${c.technique}, ${c.remote}, in ${c.ms} ms (end-to-end encrypted)`);
      c.on('path', (p: PathInfo) => say(`path changed (${p.reason}): now ${p.path} via ${p.technique}, ${p.remote}`));
      c.on('standby', (p: StandbyInfo) => say(`standby path ready: ${p.path} via ${p.technique}, ${p.remote} (used if the current one fails)`));
    },
    error: (e) => say((e as Error)?.message ?? String(e)),
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
export async function pipeStdio(connection: Connection): Promise<void> {
  process.stdin.pipe(connection, { end: true });
  connection.pipe(process.stdout, { end: false });
  await finished(connection);
}
