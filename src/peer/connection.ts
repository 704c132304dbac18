import type { PathInfo, PathManager, StandbyInfo } from '../path/path-manager.js';
import type { PathKind } from '../path/raw-path.js';
import type { SealedPath } from '../path/sealed-path.js';
import type { SecureSession } from '../secure/index.js';
import { StreamConnection, type StreamOptions } from '../transport/stream-connection.js';

export type { PathInfo, PathChangeReason, StandbyInfo } from '../path/path-manager.js';
export type { PathKind } from '../path/raw-path.js';

/**
 * What `peer.connect()` resolves to and 'connection' delivers: the stream to the peer (a Node
 * Duplex: reliable, ordered, flow- and congestion-controlled, every datagram sealed end to end),
 * plus what carries it now. The path may change under it — an upgrade, a NAT rebinding, a
 * failover — without a byte lost; each change is emitted as 'path' (PathInfo).
 *
 * `abort(reason?)` ends it on purpose: the peer's stream fails at once with PeerAbortedError
 * (ERR_PEER_ABORTED), this side's with AbortedError (ERR_ABORTED); `destroy(error)` resets it as
 * a failure (ERR_TRANSPORT_RESET on the other side). See docs/decisions/010-abort-and-allow.md.
 *
 * Events, besides a Duplex's own (`'data'`, `'end'`, `'error'`, `'close'`, …):
 * - `'path'` `(info: PathInfo)`: the stream moved to another path (`info.reason`: `upgrade`,
 *   `rebinding`, `failover` or `network-change`).
 * - `'standby'` `(info: StandbyInfo)`: another path (a relay beside a direct path, say) has
 *   proved itself and waits to take over.
 *
 * Errors the stream fails with: {@link PeerAbortedError} (`ERR_PEER_ABORTED`),
 * {@link AbortedError} (`ERR_ABORTED`), {@link StreamResetError} (`ERR_TRANSPORT_RESET`),
 * {@link StreamTimeoutError} (`ERR_TRANSPORT_TIMEOUT`); see [docs/errors.md](../../docs/errors.md).
 */
export class Connection extends StreamConnection {
  /** The peer id the remote side proved to hold (Noise XX, identity payload). */
  readonly remotePeerId: string;
  /** The Noise session: both peer ids, the handshake hash, the transport keys. */
  readonly session: SecureSession;
  /** Milliseconds from the start of connecting to the secure connection being ready. */
  ms = 0;
  #manager: PathManager | undefined;

  constructor(path: SealedPath, session: SecureSession, options: StreamOptions) {
    super(path, options);
    this.session = session;
    this.remotePeerId = session.remotePeerId;
  }

  /** @internal Called once by the peer: the manager that owns this stream's paths. */
  bindManager(manager: PathManager): void {
    this.#manager = manager;
    manager.on('path', (info: PathInfo) => this.emit('path', info));
    manager.on('standby', (info: StandbyInfo) => this.emit('standby', info));
  }

  get #active(): PathManager['active'] {
    if (!this.#manager) throw new Error('Connection: no path manager bound');
    return this.#manager.active;
  }

  /** What carries the stream now: 'direct-udp', 'direct-tcp' or 'relay'. */
  get path(): PathKind {
    return this.#active.path;
  }

  /** How the current path was found ('udp-hole-punch', 'tcp-simultaneous-open', 'rebinding', …). */
  get technique(): string {
    return this.#active.technique;
  }

  /** The peer's address on the current path, "ip:port". */
  get remote(): string {
    return this.#active.remote;
  }

  /**
   * destroy() without an error after end() — what `for await` does once the peer's data has
   * ended — must not abort bytes of ours still in flight: the FIN is delivered first, the way
   * closing a TCP socket after shutdown() still sends what is queued. With an error, or once
   * our end is acknowledged, it is the stream's destroy().
   */
  override destroy(error?: Error | null): this {
    if (error == null && this.writableEnded && !this.writableFinished && !this.destroyed) {
      if (!this.#draining) {
        this.#draining = true;
        this.once('finish', () => super.destroy());
      }
      return this;
    }
    return super.destroy(error ?? undefined);
  }

  #draining = false;

  /** Every path held to the peer, the active one marked: for diagnostics. */
  get paths(): PathManager['paths'] {
    return this.#manager?.paths ?? [];
  }
}
