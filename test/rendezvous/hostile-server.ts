/**
 * A HOSTILE rendezvous server (test double). It speaks protocol version 2 well enough for real
 * clients to register, connect and trickle, but every signed object it passes on carries
 * candidates the real peers never signed: `forgedCandidates` (e.g. a victim address the lab
 * counts packets to), as UDP and TCP candidates. A correct peer must never send a packet to them.
 *
 * How it forges (`mode`), keeping the claimed signer so the forgery is about someone real:
 * - 'resign':   the body is rewritten and signed with the server's own key;
 * - 'tamper':   the body is rewritten and the original signature kept (a random one if none);
 * - 'unsigned': the body is rewritten and the signature is 64 zero bytes.
 *
 * What it does with a `connect` from A to B:
 * - B registered here and `forge: 'intent'`: B gets the forged intent (B must refuse it);
 * - B registered here and `forge: 'accept'`: B gets A's genuine intent, and when B's genuine
 *   accept comes back, A gets a punch with a forged accept (A must reject it);
 * - B not here (the lab's single-peer case): A at once gets a punch with a fabricated accept
 *   in B's name;
 * - `forge: 'none'`: everything is passed on honestly, trickled candidates included (for tests
 *   that attack later, with `forgeCandidates`).
 * `forgeIncoming`, `forgePunch` and `forgeCandidates` push fabricated messages at a peer
 * unprompted; `replayIncoming` and `replayCandidates` re-send the last genuine ones.
 *
 * Run alone (e.g. in a lab namespace):
 *   node dist/test/rendezvous/hostile-server.js --serve --host IP --port N --forge IP:PORT[,IP:PORT] [--mode resign]
 * prints "ready ws://IP:N/" on stdout. (`--serve` keeps `node --test` from starting it.)
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { WebSocket, WebSocketServer } from 'ws';
import { within } from '../support/wait.js';
import { type Identity, generateIdentity } from '../../src/identity/index.js';
import {
  type AcceptBody, type CandidateRecord, type IntentBody, type ParsedMessage, type PunchMessage, type ServerMessage, type Signed,
  type TrickleBody, CAPABILITIES, DOMAIN, PROTOCOL_VERSION, SUPPORTED_VERSIONS, bodyHash, parseMessage, peekSigned, signObject,
} from '../../src/rendezvous/index.js';
import { candidatePriority } from '../../src/punch/candidate.js';
import { parseAddress } from '../../src/wire/index.js';

export type ForgeMode = 'resign' | 'tamper' | 'unsigned';

export interface HostileServerOptions {
  host?: string;
  port?: number;
  /** The addresses every forged object names instead of the real candidates. */
  forgedCandidates: string[];
  mode?: ForgeMode;
  /**
   * Which object to forge when both peers are here (default 'accept'); 'hold' forwards the
   * intent honestly and keeps the target's accept (in `received`) without sending any punch,
   * so that a test can `deliver` punches of its own making.
   */
  forge?: 'intent' | 'accept' | 'hold' | 'none';
  /** hello.stun (default: none, so peers register without a server-reflexive address). */
  stun?: string[];
  /** Swallow every `trickle`: no forward, no ack (default false). */
  dropTrickles?: boolean;
}

export interface Received {
  peerId: string | undefined;
  message: ParsedMessage;
}

interface Peer {
  ws: WebSocket;
  peerId: string | undefined;
  lastIncoming: Signed | undefined;
  /** The last genuine `candidates` passed on to this peer. */
  lastCandidates: { session: string; signed: Signed } | undefined;
}

interface Pending {
  initiator: Peer;
  intent: Signed;
}

const b64url = (n: number): string => randomBytes(n).toString('base64url');

export class HostileRendezvousServer {
  /** The server's own key: what 'resign' signs with. */
  readonly attacker: Identity = generateIdentity();
  /** Every message peers sent, in order. */
  readonly received: Received[] = [];
  /** How many forged objects were sent out. */
  forgeries = 0;
  readonly #options: Required<Omit<HostileServerOptions, 'host' | 'port'>>;
  readonly #http: http.Server;
  readonly #wss = new WebSocketServer({ noServer: true });
  readonly #peers = new Set<Peer>();
  readonly #pending = new Map<string, Pending>();
  /** Punched sessions: both peers, for passing trickled candidates on. */
  readonly #punched = new Map<string, [Peer, Peer]>();
  readonly #forged: CandidateRecord[];
  #watchers: (() => void)[] = [];

  private constructor(options: HostileServerOptions) {
    this.#options = { mode: 'resign', forge: 'accept', stun: [], dropTrickles: false, ...options };
    // Each forged address as a UDP and a TCP server-reflexive candidate, well-formed in every way.
    this.#forged = options.forgedCandidates.flatMap((text, i) => {
      const { address, port } = parseAddress(text);
      const priority = candidatePriority('srflx', 65_535 - i);
      return [{ kind: 'srflx', transport: 'udp', address, port, priority }, { kind: 'srflx', transport: 'tcp', address, port, priority }];
    });
    this.#http = http.createServer((_q, r) => r.writeHead(426).end());
    this.#http.on('upgrade', (request, socket, head) => {
      this.#wss.handleUpgrade(request, socket, head, (ws) => this.#onConnection(ws));
    });
  }

  static async listen(options: HostileServerOptions): Promise<HostileRendezvousServer> {
    const server = new HostileRendezvousServer(options);
    await new Promise<void>((resolve, reject) => {
      server.#http.once('error', reject);
      server.#http.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
    });
    return server;
  }

  get url(): string {
    const address = this.#http.address() as { address: string; port: number; family: string };
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `ws://${host}:${address.port}/`;
  }

  /** Peer ids registered (without any verification: this server does not care). */
  get peerIds(): string[] {
    return [...this.#peers].map((p) => p.peerId).filter((id): id is string => id !== undefined);
  }

  /** Resolves when `predicate` holds over `received` (checked on every message). */
  waitFor(predicate: (received: Received[]) => boolean): Promise<void> {
    return within(new Promise((resolve) => {
      const check = (): void => {
        if (!predicate(this.received)) return;
        this.#watchers = this.#watchers.filter((w) => w !== check);
        resolve();
      };
      this.#watchers.push(check);
      check();
    }), 'the hostile server to receive what the test waits for', { seen: () => JSON.stringify(this.received.map((r) => r.message.type)) });
  }

  /** Sends any message to a registered peer. */
  deliver(peerId: string, message: ServerMessage | Record<string, unknown>): void {
    const peer = this.#peer(peerId);
    peer.ws.send(JSON.stringify(message));
  }

  /**
   * Sends `peerId` an intent claiming to come from `claimFrom` (default: a made-up peer), naming
   * the forged candidates, forged per `mode`. Returns the session id.
   */
  forgeIncoming(peerId: string, options: { claimFrom?: string; mode?: ForgeMode; expires?: number } = {}): string {
    const session = b64url(16);
    const body: IntentBody = {
      from: options.claimFrom ?? generateIdentity().peerId, to: peerId, nonce: b64url(16),
      expires: options.expires ?? Date.now() + 30_000, candidates: this.#forged, session,
    };
    const intent = this.#sign(body, DOMAIN.intent, options.mode ?? this.#options.mode);
    this.#peer(peerId).lastIncoming = intent;
    this.deliver(peerId, { type: 'incoming', intent });
    this.forgeries++;
    return session;
  }

  /** Re-sends the last intent delivered to `peerId` (a replay). */
  replayIncoming(peerId: string): void {
    const intent = this.#peer(peerId).lastIncoming;
    if (!intent) throw new Error(`hostile server: no intent was delivered to ${peerId}`);
    this.deliver(peerId, { type: 'incoming', intent });
  }

  /** Sends `peerId` a punch for a session it never agreed to, naming the forged candidates. */
  forgePunch(peerId: string, options: { session?: string; claimPeer?: string; role?: 'controlling' | 'controlled' } = {}): string {
    const session = options.session ?? b64url(16);
    const claimPeer = options.claimPeer ?? generateIdentity().peerId;
    const intent = this.#sign({
      from: claimPeer, to: peerId, nonce: b64url(16), expires: Date.now() + 30_000, candidates: this.#forged, session,
    } satisfies IntentBody, DOMAIN.intent, this.#options.mode);
    const accept = this.#sign({
      session, intentHash: bodyHash(intent), candidates: this.#forged, nonce: b64url(16),
    } satisfies AcceptBody, DOMAIN.accept, this.#options.mode);
    this.deliver(peerId, this.#punch(session, claimPeer, options.role ?? 'controlled', intent, accept));
    this.forgeries++;
    return session;
  }

  /**
   * Sends `peerId` trickled candidates for `session` naming the forged addresses, forged per
   * `mode` (in the name of whoever the peer punched with: the signature is what must fail), with
   * a fresh `seq` so that only the signature can refuse them.
   */
  forgeCandidates(peerId: string, session: string, options: { mode?: ForgeMode; seq?: number } = {}): void {
    const body: TrickleBody = { session, seq: options.seq ?? 1_000, candidates: this.#forged };
    this.deliver(peerId, { type: 'candidates', session, signed: this.#sign(body, DOMAIN.trickle, options.mode ?? this.#options.mode) });
    this.forgeries++;
  }

  /** Re-sends the last genuine candidates passed on to `peerId` (a replay). */
  replayCandidates(peerId: string): void {
    const last = this.#peer(peerId).lastCandidates;
    if (!last) throw new Error(`hostile server: no candidates were passed on to ${peerId}`);
    this.deliver(peerId, { type: 'candidates', ...last });
  }

  async close(): Promise<void> {
    for (const peer of this.#peers) peer.ws.terminate();
    await within(new Promise<void>((resolve) => this.#wss.close(() => resolve())), 'the hostile WebSocket server to close');
    this.#http.closeAllConnections();
    await within(new Promise<void>((resolve) => this.#http.close(() => resolve())), 'the hostile HTTP server to close');
  }

  #peer(peerId: string): Peer {
    const peer = [...this.#peers].find((p) => p.peerId === peerId);
    if (!peer) throw new Error(`hostile server: ${peerId} is not connected`);
    return peer;
  }

  #onConnection(ws: WebSocket): void {
    const peer: Peer = { ws, peerId: undefined, lastIncoming: undefined, lastCandidates: undefined };
    this.#peers.add(peer);
    ws.on('close', () => this.#peers.delete(peer));
    ws.on('error', () => undefined);
    ws.on('message', (data) => {
      let message: ParsedMessage;
      try {
        message = parseMessage(data as Buffer, { maxMessageBytes: 1 << 20, maxCandidates: 64 });
      } catch {
        return;
      }
      this.received.push({ peerId: peer.peerId, message });
      this.#handle(peer, message);
      for (const watcher of [...this.#watchers]) watcher();
    });
    ws.send(JSON.stringify({
      type: 'hello', version: PROTOCOL_VERSION, versions: SUPPORTED_VERSIONS, capabilities: CAPABILITIES,
      nonce: b64url(16), token: b64url(16), stun: this.#options.stun, serverTime: Date.now(),
    }));
  }

  #handle(peer: Peer, message: ParsedMessage): void {
    switch (message.type) {
      case 'register': {
        const body = peekSigned(message.signed) as { peerId: string; srflx: string | null };
        peer.peerId = body.peerId;
        ws(peer, {
          type: 'registered', id: message.id, version: message.version, capabilities: message.capabilities,
          peerId: body.peerId, srflx: body.srflx, observedSrflx: body.srflx,
        });
        return;
      }
      case 'connect': {
        const intent = peekSigned(message.intent) as IntentBody;
        const target = [...this.#peers].find((p) => p.peerId === intent.to);
        this.#pending.set(intent.session, { initiator: peer, intent: message.intent });
        if (target && this.#options.forge === 'intent') {
          const forged = this.#forge(message.intent, DOMAIN.intent);
          target.lastIncoming = forged;
          ws(target, { type: 'incoming', intent: forged });
          this.forgeries++;
        } else if (target) {
          target.lastIncoming = message.intent;
          ws(target, { type: 'incoming', intent: message.intent });
        } else {
          // Nobody to ask: fabricate the target's accept outright.
          const accept = this.#sign({
            session: intent.session, intentHash: bodyHash(message.intent), candidates: this.#forged, nonce: b64url(16),
          } satisfies AcceptBody, DOMAIN.accept, this.#options.mode);
          ws(peer, this.#punch(intent.session, intent.to, 'controlling', message.intent, accept));
          this.forgeries++;
        }
        return;
      }
      case 'accept': {
        const body = peekSigned(message.accept) as AcceptBody;
        const pending = this.#pending.get(body.session);
        if (!pending || !peer.peerId || this.#options.forge === 'hold') return;
        const initiatorId = (peekSigned(pending.intent) as IntentBody).from;
        this.#punched.set(body.session, [pending.initiator, peer]);
        if (this.#options.forge === 'none') {
          ws(pending.initiator, this.#punch(body.session, peer.peerId, 'controlling', pending.intent, message.accept));
        } else {
          ws(pending.initiator, this.#punch(body.session, peer.peerId, 'controlling', pending.intent, this.#forge(message.accept, DOMAIN.accept)));
          this.forgeries++;
        }
        // The target gets the genuine objects: this double attacks the initiator here.
        ws(peer, this.#punch(body.session, initiatorId, 'controlled', pending.intent, message.accept));
        return;
      }
      case 'trickle': {
        // Passed on honestly: the attacks are forgeCandidates and replayCandidates.
        const other = this.#punched.get(message.session)?.find((p) => p !== peer);
        if (!other || this.#options.dropTrickles) return;
        other.lastCandidates = { session: message.session, signed: message.signed };
        ws(other, { type: 'candidates', session: message.session, signed: message.signed });
        ws(peer, { type: 'ack', id: message.id });
        return;
      }
      default:
        return;
    }
  }

  #punch(session: string, peerId: string, role: 'controlling' | 'controlled', intent: Signed, accept: Signed): PunchMessage {
    return { type: 'punch', session, peer: peerId, role, intent, accept, key: randomBytes(32).toString('base64'), startInMs: 0 };
  }

  /** A copy of `signed` whose body names the forged candidates, forged per mode. */
  #forge(signed: Signed, domain: (typeof DOMAIN)[keyof typeof DOMAIN]): Signed {
    const body = { ...(peekSigned(signed) as Record<string, unknown>), candidates: this.#forged };
    if (this.#options.mode !== 'tamper') return this.#sign(body, domain, this.#options.mode);
    return { body: Buffer.from(JSON.stringify(body)).toString('base64'), sig: signed.sig };
  }

  #sign(body: object, domain: (typeof DOMAIN)[keyof typeof DOMAIN], mode: ForgeMode): Signed {
    if (mode === 'resign') return signObject(this.attacker, domain, body);
    const sig = mode === 'unsigned' ? Buffer.alloc(64) : randomBytes(64);
    return { body: Buffer.from(JSON.stringify(body)).toString('base64'), sig: sig.toString('base64') };
  }
}

function ws(peer: Peer, message: ServerMessage): void {
  if (peer.ws.readyState === WebSocket.OPEN) peer.ws.send(JSON.stringify(message));
}

if (process.argv.includes('--serve')) {
  const { values } = parseArgs({
    options: {
      serve: { type: 'boolean' }, host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '0' },
      forge: { type: 'string' }, mode: { type: 'string', default: 'resign' }, target: { type: 'string', default: 'accept' },
    },
  });
  if (!values.forge) {
    process.stderr.write('hostile-server: --forge IP:PORT[,IP:PORT] is required\n');
    process.exit(2);
  }
  const server = await HostileRendezvousServer.listen({
    host: values.host!, port: Number(values.port), forgedCandidates: values.forge.split(','),
    mode: values.mode as ForgeMode, forge: values.target as 'intent' | 'accept' | 'hold' | 'none',
  });
  process.stdout.write(`ready ${server.url}\n`);
  const stop = (): void => void server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
