/**
 * Keeping a connection's paths alive when the network changes under it: when every path went
 * silent ('stale': a NAT reboot, an address change), each side proves its public address again
 * and the side that opened the connection punches anew through the rendezvous with a signed
 * intent naming the connection (IntentBody.resume); a connection that started on TCP looks for a
 * UDP path from time to time. What a re-punch finds joins the connection's path manager, which
 * moves the stream there. @see docs/decisions/006-paths.md
 */
import type { EventEmitter } from 'node:events';
import { debuglog } from 'node:util';
import { normalizePeerId } from '../identity/index.js';
import { deadline } from '../deadline.js';
import { formatAddress } from '../wire/index.js';
import type { UdpMux } from '../punch/udp-mux.js';
import { UdpCheckSession } from '../punch/udp-checks.js';
import { checkCandidates } from '../punch/candidate.js';
import type { PunchInstruction } from '../rendezvous/client.js';
import type { ReconnectingRendezvousClient } from '../rendezvous/reconnecting-client.js';
import type { PathManager } from '../path/path-manager.js';
import { resumeTag } from '../path/resume.js';
import type { UdpEndpoint } from '../path/udp-endpoint.js';
import type { Connection } from './connection.js';

const debug = debuglog('natpunch:peer');

/** How long a stale connection's side waits for the rendezvous server to answer a ping before registering again, ms. */
const RECOVER_PROBE_MS = 1_500;
/** A re-punch (intent, accept and checks) gives up after this long, ms. */
const RECOVER_PUNCH_TIMEOUT_MS = 10_000;
/** Backoff between recovery attempts while a connection stays stale: 0.5 s doubling to 30 s. */
const RECOVER_BACKOFF_MS = 500;
const RECOVER_MAX_BACKOFF_MS = 30_000;
/** A connection not on UDP looks for a UDP path after 5 s, then backing off to every 2 min. */
const UPGRADE_FIRST_MS = 5_000;
const UPGRADE_MAX_MS = 120_000;
/** A re-punch's check session keeps answering the other side's late checks this long, ms. */
const REPUNCH_LINGER_MS = 5_000;

/** An open connection, as recovery keeps it. */
interface LiveConnection {
  connection: Connection;
  manager: PathManager;
  udp: UdpEndpoint;
  peer: string;
  role: 'controlling' | 'controlled';
  /** What the intent asked for: 'udp' and 'tcp' are kept to (no re-punch adds the other). */
  transport: 'auto' | 'udp' | 'tcp' | 'relay';
  resume: string;
  recovering: boolean;
  /** The upgrade loop (looking for a UDP path while on TCP or the relay) is running. */
  upgrading: boolean;
  /** Check sessions of re-punches, closed with the connection. */
  repunches: Set<UdpCheckSession>;
}

export class Recovery {
  readonly #rendezvous: ReconnectingRendezvousClient;
  readonly #mux: UdpMux;
  readonly #closing: AbortSignal;
  /** The peer: emits 'reconnected', and is told of a new 'srflx'. */
  readonly #events: EventEmitter;
  /** Open connections by their resume tag (src/path/resume.ts), for re-punches the peer asks for. */
  readonly #connections = new Map<string, LiveConnection>();

  constructor(options: { rendezvous: ReconnectingRendezvousClient; mux: UdpMux; closing: AbortSignal; events: EventEmitter }) {
    this.#rendezvous = options.rendezvous;
    this.#mux = options.mux;
    this.#closing = options.closing;
    this.#events = options.events;
  }

  /** Looks after `connection` until it closes. */
  track(connection: Connection, manager: PathManager, udp: UdpEndpoint, instruction: PunchInstruction): void {
    const live: LiveConnection = {
      connection, manager, udp, peer: normalizePeerId(instruction.peer), role: instruction.role, transport: instruction.transport,
      resume: resumeTag(connection.session), recovering: false, upgrading: false, repunches: new Set(),
    };
    this.#connections.set(live.resume, live);
    connection.once('close', () => {
      this.#connections.delete(live.resume);
      for (const check of live.repunches) check.close();
    });
    // Re-punching finds UDP paths: not for a connection forced onto TCP.
    if (live.transport === 'tcp' || live.transport === 'relay') return;
    manager.on('stale', () => void this.#recover(live));
    if (live.transport === 'auto' && live.role === 'controlling') {
      // Started on TCP or the relay, or failed over to one since: look for UDP again.
      const indirect = (): void => { if (manager.active.path !== 'direct-udp') void this.#upgrade(live); };
      indirect();
      manager.on('path', indirect);
    }
  }

  /**
   * No path of `live` answers any more: the NAT dropped or moved a mapping, or an address
   * changed. Prove this side's public address afresh (a new mapping is registered, so the next
   * accept or intent signs it), and — the side that opened the connection — punch again through
   * the rendezvous with a signed intent that names the connection (IntentBody.resume). What the
   * punch finds becomes a path of the same connection; the stream moves to it. Retries with
   * backoff while the connection stays stale, as a re-registration does.
   */
  async #recover(live: LiveConnection): Promise<void> {
    if (live.recovering || this.#closing.aborted) return;
    live.recovering = true;
    const { manager, connection } = live;
    const stillStale = (): boolean => manager.stale && !connection.destroyed && !this.#closing.aborted;
    try {
      for (let attempt = 0; stillStale(); attempt++) {
        // The outage that broke the path often broke the registration too (the same NAT forgot
        // the WebSocket's mapping): re-punching needs it back first.
        // Is the registration really alive? After an address change its TCP connection is dead
        // long before the server's pings would say so.
        if (this.#rendezvous.connected) await this.#rendezvous.probe(RECOVER_PROBE_MS).catch((error: Error) => debug('recover: rendezvous connection: %s', error.message));
        if (!this.#rendezvous.connected) await this.#waitFor(manager, RECOVER_MAX_BACKOFF_MS, 'reconnected');
        if (!stillStale()) break;
        debug('connection to %s stale: recovering (attempt %d)', live.peer, attempt + 1);
        const before = this.#rendezvous.srflx;
        const srflx = await this.#rendezvous.updateSrflx({ signal: this.#closing })
          .catch((error: Error) => { debug('recover: srflx not updated: %s', error.message); return before; });
        if (srflx !== before) this.#events.emit('srflx', srflx);
        if (!stillStale()) break;
        if (live.role === 'controlling') {
          const limit = deadline(RECOVER_PUNCH_TIMEOUT_MS, this.#closing);
          const instruction = await this.#rendezvous.connect(live.peer, { transport: 'udp', resume: live.resume, signal: limit.signal })
            .catch((error: Error) => { debug('recover: no re-punch intent: %s', error.message); return undefined; })
            .finally(limit.clear);
          if (instruction) await this.#repunch(live, instruction, srflx !== before ? 'network-change' : undefined);
        }
        if (!stillStale()) break;
        await this.#waitFor(manager, Math.min(RECOVER_MAX_BACKOFF_MS, RECOVER_BACKOFF_MS * 2 ** attempt), this.#rendezvous.connected ? undefined : 'reconnected');
      }
    } finally {
      live.recovering = false;
    }
  }

  /**
   * A connection that started on TCP (UDP was blocked, or lost the race) looks for a UDP path
   * from time to time — the network may let UDP through now — and moves there when one proves
   * itself ('path', reason 'upgrade'); the TCP path stays as the standby. The side that opened the
   * connection does it, with a re-punch intent as in #recover, backing off from UPGRADE_FIRST_MS
   * to UPGRADE_MAX_MS.
   */
  async #upgrade(live: LiveConnection): Promise<void> {
    if (live.upgrading) return;
    live.upgrading = true;
    try {
      await this.#upgradeLoop(live);
    } finally {
      live.upgrading = false;
    }
  }

  async #upgradeLoop(live: LiveConnection): Promise<void> {
    const { manager, connection } = live;
    const wanted = (): boolean => manager.active.path !== 'direct-udp' && !connection.destroyed && !this.#closing.aborted;
    for (let attempt = 0; wanted(); attempt++) {
      await this.#waitFor(manager, Math.min(UPGRADE_MAX_MS, UPGRADE_FIRST_MS * 2 ** attempt), undefined, 'path');
      if (!wanted() || live.recovering || !this.#rendezvous.connected) continue;
      debug('connection to %s on %s: looking for a UDP path (attempt %d)', live.peer, manager.active.path, attempt + 1);
      // Where UDP was blocked at registration there is no server-reflexive address yet.
      await this.#rendezvous.updateSrflx({ signal: this.#closing }).catch((error: Error) => debug('upgrade: srflx: %s', error.message));
      const limit = deadline(RECOVER_PUNCH_TIMEOUT_MS, this.#closing);
      const instruction = await this.#rendezvous.connect(live.peer, { transport: 'udp', resume: live.resume, signal: limit.signal })
        .catch((error: Error) => { debug('upgrade: no re-punch intent: %s', error.message); return undefined; })
        .finally(limit.clear);
      if (instruction) await this.#repunch(live, instruction);
    }
  }

  /** Resolves after `ms`, or as soon as `manager` has a live path again, or this peer emits `event`, or on close. */
  #waitFor(manager: PathManager, ms: number, event?: 'reconnected', managerEvent: 'live' | 'path' = 'live'): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        manager.off(managerEvent, done);
        if (event) this.#events.off(event, done);
        this.#closing.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      manager.once(managerEvent, done);
      if (event) this.#events.once(event, done);
      this.#closing.addEventListener('abort', done, { once: true });
    });
  }

  /** A re-punch intent from the peer of one of our connections (the target's side of #recover). */
  onResumePunch(instruction: PunchInstruction): void {
    const live = this.#connections.get(instruction.resume!);
    if (!live || live.peer !== normalizePeerId(instruction.peer)) {
      debug('re-punch for an unknown connection from %s: ignored', instruction.peer);
      return;
    }
    void this.#repunch(live, instruction);
  }

  /**
   * UDP checks for a re-punch session; the pair they nominate joins the connection as a path,
   * sealed with the connection's keys under its connection id (the check session only opens the
   * holes). The check session answers late checks for a while, then closes.
   */
  async #repunch(live: LiveConnection, instruction: PunchInstruction, reason?: 'network-change'): Promise<void> {
    const check = new UdpCheckSession({
      mux: this.#mux, session: instruction.session, key: instruction.key, role: instruction.role, startAt: instruction.startAt,
      signal: this.#closing, timeoutMs: RECOVER_PUNCH_TIMEOUT_MS,
      remoteCandidates: checkCandidates(instruction.remoteCandidates),
    });
    live.repunches.add(check);
    const release = (): void => { check.close(); live.repunches.delete(check); };
    try {
      const punched = await check.result;
      debug('re-punch to %s found %s', live.peer, formatAddress(punched.remote));
      live.manager.add(live.udp.pathTo(punched.remote, 'udp-hole-punch'), reason);
      setTimeout(release, REPUNCH_LINGER_MS).unref();
    } catch (error) {
      debug('re-punch to %s failed: %s', live.peer, (error as Error).message);
      release();
    }
  }
}
