/**
 * Shared set-up for the rendezvous tests: a real StunServer and RendezvousServer on 127.0.0.1,
 * real clients on real UDP sockets, and a raw WebSocket client for speaking the protocol by hand.
 */
import dgram from 'node:dgram';
import { once, until as untilWithin, within } from '../support/wait.js';
import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import { type Identity, generateIdentity } from '../../src/identity/index.js';
import {
  type RendezvousClientOptions, type RendezvousLimits, type RendezvousServerOptions, type ServerMessage, type StartTimingOptions,
  CAPABILITIES, DOMAIN, PROTOCOL_VERSION, RendezvousClient, RendezvousServer, ReflexiveObserver, bodyHash, peekSigned, signObject,
} from '../../src/rendezvous/index.js';
import { type CandidateTransport, type CandidateType, candidatePriority } from '../../src/punch/candidate.js';
import type { CandidateRecord } from '../../src/rendezvous/index.js';
import { StunServer } from '../../src/stun/server.js';
import { parseAddress } from '../../src/wire/index.js';

/** Closes everything a test opened, newest first. */
export class Resources {
  #closers: (() => unknown)[] = [];

  add<T>(thing: T, close: (thing: T) => unknown): T {
    const name = (thing as object | null)?.constructor?.name ?? String(thing);
    this.#closers.push(() => within(Promise.resolve(close(thing)), `closing a ${name}`));
    return thing;
  }

  async close(): Promise<void> {
    for (const close of this.#closers.reverse()) await close();
    this.#closers = [];
  }
}

export interface Servers {
  stun: StunServer;
  observer: ReflexiveObserver;
  server: RendezvousServer;
  url: string;
}

export async function startServers(
  resources: Resources,
  options: { limits?: Partial<RendezvousLimits>; timing?: StartTimingOptions; now?: () => number; capabilities?: RendezvousServerOptions['capabilities'] } = {},
): Promise<Servers> {
  const observer = new ReflexiveObserver();
  const stun = resources.add(await StunServer.listen({ address: '127.0.0.1', port: 0, onBinding: observer.onBinding }), (s) => s.close());
  const server = resources.add(await RendezvousServer.listen({ host: '127.0.0.1', port: 0, stun, observer, ...options }), (s) => s.close());
  return { stun, observer, server, url: server.url };
}

export async function udpSocket(resources: Resources): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return resources.add(socket, (s) => s.close());
}

export interface Peer {
  identity: Identity;
  socket: dgram.Socket;
  client: RendezvousClient;
  /** "127.0.0.1:port" of the socket. */
  endpoint: string;
}

export async function startPeer(resources: Resources, url: string, options: Partial<RendezvousClientOptions> = {}): Promise<Peer> {
  const identity = options.identity ?? generateIdentity();
  const socket = options.udpSocket ?? await udpSocket(resources);
  const endpoint = `127.0.0.1:${socket.address().port}`;
  const client = resources.add(
    await RendezvousClient.connect({ url, identity, udpSocket: socket, privateEndpoints: [endpoint], ...options }),
    (c) => c.close(),
  );
  return { identity, socket, client, endpoint };
}

/**
 * A WebSocket speaking the protocol by hand: every frame received is queued for `next`. `send`
 * fills in what every version-2 request carries when a test leaves it out — an `id` (1, 2, ...)
 * and, on `register`, this code's version and capabilities — unless `exact` is set.
 */
export class RawClient {
  readonly ws: WebSocket;
  readonly #closed: Promise<number>;
  /** The id the last request was sent with. */
  lastId = 0;
  #queue: unknown[] = [];
  #waiting: ((message: unknown) => void) | undefined;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.#closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
    ws.on('error', () => undefined);
    ws.on('message', (data) => {
      const message: unknown = JSON.parse(String(data));
      if (this.#waiting) {
        const wake = this.#waiting;
        this.#waiting = undefined;
        wake(message);
      } else {
        this.#queue.push(message);
      }
    });
  }

  /** `localAddress`: the source address to connect from (loopback has all of 127.0.0.0/8). */
  static async open(resources: Resources, url: string, options: { localAddress?: string } = {}): Promise<RawClient> {
    const ws = new WebSocket(url, options);
    const client = new RawClient(ws);
    resources.add(client, (c) => c.ws.terminate());
    await once(ws, 'open');
    return client;
  }

  /** The close code, once the server has closed the connection (bounded from when it is asked for). */
  get closed(): Promise<number> {
    return within(this.#closed, 'the server closing the raw WebSocket');
  }

  /** The next message (any type). */
  next(): Promise<ServerMessage & Record<string, unknown>> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve(queued as ServerMessage & Record<string, unknown>);
    return within(new Promise((resolve) => {
      this.#waiting = resolve as (message: unknown) => void;
    }), 'the next message from the server to the raw WebSocket');
  }

  send(message: unknown, options: { exact?: boolean } = {}): void {
    if (typeof message === 'string') return this.ws.send(message);
    let out = message;
    if (!options.exact && typeof message === 'object' && message !== null && !Array.isArray(message)) {
      const m = message as Record<string, unknown>;
      const filled: Record<string, unknown> = { id: ++this.lastId };
      if (m['type'] === 'register') Object.assign(filled, { version: PROTOCOL_VERSION, capabilities: [...CAPABILITIES] });
      out = { ...filled, ...m };
    }
    this.ws.send(JSON.stringify(out));
  }

  /** Sends and waits for the reply. */
  async ask(message: unknown, options: { exact?: boolean } = {}): Promise<ServerMessage & Record<string, unknown>> {
    this.send(message, options);
    return this.next();
  }
}

export const token = (): string => randomBytes(16).toString('base64url');

/** A well-formed typed candidate for "ip:port" (host, UDP, top local preference unless told). */
export function candidate(text: string, kind: CandidateType = 'host', transport: CandidateTransport = 'udp', localPreference = 65_535): CandidateRecord {
  const { address, port } = parseAddress(text);
  return { kind, transport, address, port, priority: candidatePriority(kind, localPreference) };
}

/**
 * Opens a raw client and registers `identity` (no server-reflexive claim), asking for
 * `capabilities` (default: all this code knows). Returns it after `registered`.
 */
export async function registerRaw(
  resources: Resources, url: string, identity: Identity = generateIdentity(), options: { localAddress?: string; capabilities?: readonly string[] } = {},
): Promise<{ raw: RawClient; identity: Identity }> {
  const raw = await RawClient.open(resources, url, options.localAddress === undefined ? {} : { localAddress: options.localAddress });
  const hello = await raw.next();
  const signed = signObject(identity, DOMAIN.register, { peerId: identity.peerId, nonce: hello['nonce'], privateEndpoints: ['127.0.0.1:9'], srflx: null });
  const registered = await raw.ask({ type: 'register', signed, ...(options.capabilities ? { capabilities: options.capabilities } : {}) });
  if (registered.type !== 'registered') throw new Error(`registerRaw: ${JSON.stringify(registered)}`);
  return { raw, identity };
}

/**
 * A raw peer (registered by hand, asking for `capabilities`) punched with a real one (a) that
 * initiated: the raw side can then send anything it likes about the session. `trickle` builds a
 * trickle message signed by the raw peer (or `signer`).
 */
export async function rawPunched(resources: Resources, limits: Partial<RendezvousLimits> = {}, options: { capabilities?: readonly string[] } = {}) {
  const servers = await startServers(resources, { limits });
  const a = await startPeer(resources, servers.url);
  const { raw, identity } = await registerRaw(resources, servers.url, generateIdentity(), options);
  const result = a.client.connect(identity.peerId);
  const incoming = await raw.next();
  const intent = incoming['intent'] as { body: string; sig: string };
  const session = (peekSigned(intent) as { session: string }).session;
  const accept = signObject(identity, DOMAIN.accept, {
    session, intentHash: bodyHash(intent), candidates: [candidate('127.0.0.1:9')], nonce: token(), capabilities: ['trickle'],
  });
  const punch = await raw.ask({ type: 'accept', accept });
  if (punch.type !== 'punch') throw new Error(`rawPunched: the accept got ${JSON.stringify(punch)}`);
  await result;
  const trickle = (body: Record<string, unknown>, signer = identity) => ({
    type: 'trickle', session, signed: signObject(signer, DOMAIN.trickle, { session, candidates: [], ...body }),
  });
  return { ...servers, a, raw, identity, session, trickle };
}

/** Resolves once `condition()` holds, checked every 2 ms (5 s at most). */
export function until(condition: () => boolean, what = 'condition'): Promise<void> {
  return untilWithin(condition, what, { timeoutMs: 5000, intervalMs: 2 });
}
