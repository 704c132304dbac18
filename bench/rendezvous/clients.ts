/**
 * Simulated peers for the rendezvous benchmark, in a process of their own (the server is
 * measured alone). Each peer is a bare WebSocket from its own 127.x source address that speaks
 * the protocol as a real client does, with real Ed25519 signatures: `register` signed over
 * hello's nonce (no server-reflexive claim, so no STUN proof is awaited), signed intents, signed
 * accepts. The intents and accepts of the brokering phase are signed before it starts (presign):
 * signing them as it goes made these processes, not the server, the limit (two Ed25519
 * signatures per connect, ~30 µs each here, on the clients' one core). Each is still used once,
 * with its own session and nonces; only the moment of signing moves. With several nodes (urls), peer i registers with node i mod N and every initiator
 * connects to targets registered with another node, so that each connect crosses the bus.
 * Commanded by the parent over IPC:
 *   { type: 'register', upTo? }               -> { type: 'registered', peers, failed, ms } (peers: registered so far)
 *   { type: 'window', window }                -> (requests in flight from now on)
 *   { type: 'broker', warmupMs, durationMs, presignPerSecond } -> { type: 'presigned' }, then after { type: 'go' }:
 *                                             -> { type: 'brokered', byNode: [{ completed, latencies }], errors, measuredMs, signing, presignMs }
 * argv[2]: JSON { urls, first, count, addresses: string[], perAddress, window }.
 */
import { randomToken } from '../../src/random-pool.js';
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { type Identity, generateIdentity } from '../../src/identity/index.js';
import { type Signed, DOMAIN, PROTOCOL_VERSION, bodyHash, peekSigned, signObject } from '../../src/rendezvous/index.js';

interface Config {
  /** One rendezvous URL per node. */
  urls: string[];
  /** Index of this process's first peer (for source addresses). */
  first: number;
  count: number;
  /** Source addresses, one per `perAddress` peers in order of the global index. */
  addresses: string[];
  perAddress: number;
  /** Requests in flight at once (registrations, then connects). */
  window: number;
}

interface SimulatedPeer {
  identity: Identity;
  /** Index in config.urls of the node it registers with. */
  node: number;
  ws: WebSocket | undefined;
  nextId: number;
}

const config = JSON.parse(process.argv[2]!) as Config;
const peers: SimulatedPeer[] = [];
const byId = new Map<string, SimulatedPeer>();
/** Connects in flight: session -> when the intent was sent and the initiator's node; and the connect's request id -> session. */
const pending = new Map<string, { started: number; node: number }>();
const sessionOf = new Map<number, string>();
/** Signed before brokering: the connects to launch in order, and each intent's accept for its target (by the intent's signature, which `incoming` carries as text). */
const presigned: { from: SimulatedPeer; to: SimulatedPeer; session: string; intent: Signed; expires: number }[] = [];
const acceptFor = new Map<string, Signed>();
/** Connects launched with a presigned intent, and those signed as they went (the presigned ran out or were near expiry). */
const signing = { presigned: 0, live: 0 };
/** Resolves the wait between signing ahead and brokering. */
let go: (() => void) | undefined;
/** Presigned intents expire this far ahead (the server takes at most 60 s); one is used only while 10 s of that are left. */
const PRESIGNED_LIFETIME_MS = 55_000;
const PRESIGNED_MARGIN_MS = 10_000;
let onSettled: ((ok: boolean, ms: number, node: number, code?: string) => void) | undefined;

function send(peer: SimulatedPeer, message: Record<string, unknown>): number {
  const id = peer.nextId++;
  peer.ws!.send(JSON.stringify({ id, ...message }));
  return id;
}

/** Top-level fields of the server's `punch` and `incoming` (the signed bodies inside are base64, so these occur once). */
const SESSION_FIELD = /"session":"([^"]+)"/;
const SIG_FIELD = /"sig":"([^"]+)"/;

/**
 * The brokering phase's messages (`incoming`, `punch`, the report's `ack`) are read by what the
 * load needs, not parsed whole: the server writes `type` first (JSON.stringify keeps the order
 * it builds them in), and a load generator's CPU per connect should stay well below the node's,
 * which it was not (parsing each `punch` with its two signed objects). Anything else, and an
 * intent not signed ahead, is parsed in full.
 */
function onMessage(peer: SimulatedPeer, data: unknown, registered: (ok: boolean) => void): void {
  const text = String(data);
  if (text.startsWith('{"type":"ack"')) return;
  if (text.startsWith('{"type":"punch"')) return onPunch(peer, SESSION_FIELD.exec(text)![1]!, text.includes('"role":"controlling"'));
  if (text.startsWith('{"type":"incoming"')) {
    const sig = SIG_FIELD.exec(text)?.[1];
    const ready = sig === undefined ? undefined : acceptFor.get(sig);
    if (ready !== undefined) {
      acceptFor.delete(sig!);
      send(peer, { type: 'accept', accept: ready });
      return;
    }
  }
  const message = JSON.parse(text) as Record<string, unknown> & { type: string };
  switch (message.type) {
    case 'hello': {
      const signed = signObject(peer.identity, DOMAIN.register, { peerId: peer.identity.peerId, nonce: message['nonce'], privateEndpoints: [], srflx: null });
      // 'report', as natpunch peers ask for by default: each side reports its connect (below).
      send(peer, { type: 'register', version: PROTOCOL_VERSION, capabilities: ['report'], signed });
      return;
    }
    case 'registered':
      return registered(true);
    case 'incoming': {
      // The target's side: accept at once, signed over the intent it answers.
      const intent = message['intent'] as Signed;
      const { session } = peekSigned(intent) as { session: string };
      send(peer, { type: 'accept', accept: signAccept(peer, intent, session) });
      return;
    }
    case 'error': {
      if (peer.ws && !byId.has(peer.identity.peerId)) return registered(false);
      // An error about a connect names its session (ref) or only its request (id: rate-limited).
      const ref = (message['ref'] as string | undefined) ?? sessionOf.get(message['id'] as number);
      const sent = ref === undefined ? undefined : pending.get(ref);
      if (sent !== undefined) {
        pending.delete(ref!);
        onSettled?.(false, performance.now() - sent.started, sent.node, String(message['code']));
      }
      return;
    }
    default:
      return;
  }
}

function onPunch(peer: SimulatedPeer, session: string, controlling: boolean): void {
  if (!controlling) return;
  // The initiator tells the server how the connection ended, as a natpunch peer does once its
  // secure stream is up (here at once: the bench measures the server, not the punch).
  send(peer, { type: 'report', session, outcome: 'connected', path: 'direct-udp', technique: 'udp-hole-punch', ms: 40 });
  const sent = pending.get(session);
  if (sent === undefined) return;
  pending.delete(session);
  onSettled?.(true, performance.now() - sent.started, sent.node);
}

function signAccept(peer: SimulatedPeer, intent: Signed, session: string): Signed {
  return signObject(peer.identity, DOMAIN.accept, { session, intentHash: bodyHash(intent), candidates: [], nonce: randomToken() });
}

function signIntent(from: SimulatedPeer, to: SimulatedPeer, session: string, expires: number): Signed {
  return signObject(from.identity, DOMAIN.intent, { from: from.identity.peerId, to: to.identity.peerId, nonce: randomToken(), expires, candidates: [], session });
}

/** Initiator i's target on turn `turn` (see broker). */
function pairOf(live: SimulatedPeer[], turn: number): [SimulatedPeer, SimulatedPeer] {
  const n = live.length;
  const i = turn % n;
  const round = Math.floor(turn / n);
  return [live[i]!, targetFor(live, i, (i + 1 + (round % (n - 1))) % n)];
}

/** Signs `count` connects ahead, in launch order, with each one's accept. */
function presign(live: SimulatedPeer[], count: number): void {
  const expires = Date.now() + PRESIGNED_LIFETIME_MS;
  for (let turn = 0; turn < count; turn++) {
    const [from, to] = pairOf(live, turn);
    const session = randomToken();
    const intent = signIntent(from, to, session, expires);
    presigned.push({ from, to, session, intent, expires });
    acceptFor.set(intent.sig, signAccept(to, intent, session));
  }
}

function registerOne(peer: SimulatedPeer, index: number): Promise<boolean> {
  return new Promise((resolve) => {
    // Consecutive peers from different addresses, so that registrations in flight spread over them.
    const localAddress = config.addresses[index % config.addresses.length]!;
    const ws = new WebSocket(config.urls[peer.node]!, { localAddress, perMessageDeflate: false });
    peer.ws = ws;
    let done = false;
    const registered = (ok: boolean): void => {
      if (done) return;
      done = true;
      if (ok) byId.set(peer.identity.peerId, peer);
      resolve(ok);
    };
    ws.on('message', (data) => onMessage(peer, data, registered));
    ws.on('error', () => registered(false));
    ws.on('close', () => registered(false));
  });
}

/** Runs `task(i)` for i in [0, n) with at most `window` at once. */
async function windowed(n: number, window: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(window, n) }, async () => {
    while (next < n) await task(next++);
  }));
}

/** Registers peers [registered so far, upTo) of this process's share: the benchmark registers in two steps to measure memory in between. */
async function register(upTo = config.count): Promise<{ peers: number; failed: number; ms: number }> {
  const from = peers.length;
  for (let i = from; i < Math.min(upTo, config.count); i++) {
    peers.push({ identity: generateIdentity(), node: (config.first + i) % config.urls.length, ws: undefined, nextId: 1 });
  }
  const started = performance.now();
  let failed = 0;
  await windowed(peers.length - from, config.window, async (k) => {
    if (!(await registerOne(peers[from + k]!, config.first + from + k))) failed++;
  });
  return { peers: byId.size, failed, ms: performance.now() - started };
}

/**
 * Keeps `window` connects in flight for warmup + duration: initiators in turn, each toward a
 * different target every round (so no initiator-target pair repeats soon: the server's pair
 * bucket is not what is measured); with several nodes, the next target registered with another
 * node than the initiator. Latency: intent sent -> punch received by the initiator, counted for
 * the initiator's node.
 */
async function broker(warmupMs: number, durationMs: number, presignPerSecond: number): Promise<{ byNode: NodeTally[]; errors: Record<string, number>; measuredMs: number; signing: typeof signing; presignMs: number }> {
  const live = peers.filter((p) => byId.has(p.identity.peerId));
  const signStart = performance.now();
  if (live.length > 1) presign(live, Math.ceil(presignPerSecond * (warmupMs + durationMs) / 1000));
  const presignMs = performance.now() - signStart;
  // Every client process starts together, once all have signed ahead (the parent says go).
  await new Promise<void>((resolve) => {
    go = resolve;
    process.send!({ type: 'presigned' });
  });
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + durationMs;
  const byNode: NodeTally[] = config.urls.map(() => ({ completed: 0, latencies: [] }));
  const errors: Record<string, number> = {};
  let turn = 0;
  await new Promise<void>((resolve) => {
    let inFlight = 0;
    // Connects still unanswered 10 s after the end are counted lost (the server answers each; this is a safety net).
    setTimeout(resolve, end - start + 10_000).unref();
    const launch = (): void => {
      while (inFlight < config.window && performance.now() < end) {
        const ready = presigned[turn];
        let from: SimulatedPeer, session: string, intent: Signed;
        if (ready !== undefined && ready.expires - Date.now() >= PRESIGNED_MARGIN_MS) {
          ({ from, session, intent } = ready);
          presigned[turn] = undefined!;
          signing.presigned++;
        } else {
          let to: SimulatedPeer;
          [from, to] = pairOf(live, turn);
          session = randomToken();
          intent = signIntent(from, to, session, Date.now() + 15_000);
          signing.live++;
        }
        turn++;
        pending.set(session, { started: performance.now(), node: from.node });
        sessionOf.set(from.nextId, session);
        send(from, { type: 'connect', intent });
        inFlight++;
      }
      if (inFlight === 0) resolve();
    };
    onSettled = (ok, ms, node, code) => {
      inFlight--;
      const now = performance.now();
      if (now >= measureFrom && now < end) {
        if (ok) {
          byNode[node]!.completed++;
          byNode[node]!.latencies.push(ms);
        } else {
          errors[code ?? 'unknown'] = (errors[code ?? 'unknown'] ?? 0) + 1;
        }
      }
      // Yield to I/O between launches so that answers are read while intents go out.
      if (inFlight === config.window - 1) setImmediate(launch);
      else if (inFlight === 0) launch();
    };
    launch();
  });
  onSettled = undefined;
  presigned.length = 0;
  acceptFor.clear();
  return { byNode, errors, measuredMs: Math.min(durationMs, performance.now() - measureFrom), signing, presignMs };
}

interface NodeTally { completed: number; latencies: number[] }

/** live[j], or with several nodes the first peer from j on registered with another node than live[i] (and not live[i]). */
function targetFor(live: SimulatedPeer[], i: number, j: number): SimulatedPeer {
  if (config.urls.length === 1) return live[j]!;
  for (let k = 0; k < live.length; k++) {
    const candidate = live[(j + k) % live.length]!;
    if (candidate.node !== live[i]!.node) return candidate;
  }
  return live[j]!; // every live peer on one node (all others failed to register): same-node connects
}

process.on('message', (message: { type: string; upTo?: number; warmupMs?: number; durationMs?: number; window?: number; presignPerSecond?: number }) => {
  const reply = (value: unknown): void => { process.send!(value); };
  if (message.type === 'window' && message.window !== undefined) config.window = message.window;
  else if (message.type === 'go') go?.();
  else if (message.type === 'register') void register(message.upTo).then((result) => reply({ type: 'registered', ...result }));
  else if (message.type === 'broker') void broker(message.warmupMs ?? 0, message.durationMs ?? 5000, message.presignPerSecond ?? 0).then((result) => reply({ type: 'brokered', ...result }));
});
process.on('disconnect', () => process.exit(0));
