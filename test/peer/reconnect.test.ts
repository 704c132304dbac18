import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once, onceMatching } from '../support/wait.js';
import { fileURLToPath } from 'node:url';
import { NatpunchServer } from '../../src/server/natpunch-server.js';
import { createPeer, generateIdentity, type Connection, type Peer } from '../../src/index.js';
import type { KeepaliveInfo } from '../../src/peer/peer.js';
import { RendezvousError } from '../../src/rendezvous/errors.js';
import type { DisconnectInfo, ReconnectInfo } from '../../src/rendezvous/reconnecting-client.js';
import { ProcessOutput } from '../support/process.js';
import { readAll } from '../support/streams.js';

/**
 * A peer keeps its registration: a rendezvous server that goes away and comes back on the same
 * ports finds the peer registered again, and reachable; a permanent refusal ('replaced') stops
 * the attempts; close() during the backoff leaves nothing behind.
 */

const CHILD = fileURLToPath(new URL('./reconnect-child.js', import.meta.url));

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A NatpunchServer on loopback that can be closed and started again on the same ports. */
class RestartableServer {
  #server: NatpunchServer;
  #running = true;
  readonly #ports: { port: number; httpPort: number };

  private constructor(server: NatpunchServer) {
    this.#server = server;
    this.#ports = { port: server.stun.addresses[0]!.port, httpPort: Number(new URL(server.rendezvousUrl!).port) };
  }

  static async start(): Promise<RestartableServer> {
    return new RestartableServer(await NatpunchServer.listen({ address: '127.0.0.1', port: 0, httpPort: 0 }));
  }

  get server(): NatpunchServer {
    return this.#server;
  }

  get url(): string {
    return this.#server.rendezvousUrl!;
  }

  /** Closes the server (its clients see a 'shutdown'); harmless when already stopped. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    await this.#server.close();
  }

  async restart(): Promise<void> {
    this.#server = await NatpunchServer.listen({ address: '127.0.0.1', ...this.#ports });
    this.#running = true;
  }
}

function nextEvent<T extends unknown[]>(peer: Peer, event: string): Promise<T> {
  return once(peer, event) as Promise<T>;
}

/** One connection from `from` to `to`, 256 KiB each way, checked. */
async function exchange(from: Peer, to: Peer): Promise<Connection> {
  const incoming = nextEvent<[Connection]>(to, 'connection');
  const outgoing = await from.connect(to.peerId);
  const [accepted] = await incoming;
  assert.equal(outgoing.remotePeerId, to.peerId);
  assert.equal(accepted.remotePeerId, from.peerId);
  const there = randomBytes(256 << 10);
  const back = randomBytes(256 << 10);
  const [gotThere, gotBack] = [readAll(accepted), readAll(outgoing)];
  outgoing.end(there);
  accepted.end(back);
  assert.equal(sha(await gotThere), sha(there), `${from.peerId.slice(0, 8)} -> ${to.peerId.slice(0, 8)}`);
  assert.equal(sha(await gotBack), sha(back), `${to.peerId.slice(0, 8)} -> ${from.peerId.slice(0, 8)}`);
  return outgoing;
}

test('a peer whose rendezvous server restarts on the same port registers again, and a second peer then connects to it', { timeout: 60_000 }, async () => {
  const servers = await RestartableServer.start();
  const listener = await createPeer({ server: servers.url, identity: generateIdentity(), keepaliveMs: 0 });
  let other: Peer | undefined;
  try {
    const disconnected = nextEvent<[RendezvousError, DisconnectInfo]>(listener, 'disconnected');
    await servers.stop();
    const [reason, info] = await disconnected;
    assert.ok(reason instanceof RendezvousError, String(reason));
    // A server that shuts down says so; a dropped connection would be 'closed'. Both are retried.
    assert.ok(['shutdown', 'closed'].includes(reason.reason), reason.message);
    assert.equal(typeof info.retryInMs, 'number');
    assert.ok(info.retryInMs! >= 250 && info.retryInMs! <= 500, `the first retry waits 0.5 s with equal jitter: ${info.retryInMs}`);
    assert.equal(listener.registered, false);

    // Not registered: connect() fails at once with a reason to switch on, not after a timeout.
    const started = performance.now();
    await assert.rejects(listener.connect(generateIdentity().peerId), (error: unknown) => {
      assert.ok(error instanceof RendezvousError);
      assert.equal(error.code, 'ERR_RENDEZVOUS');
      assert.equal(error.reason, 'disconnected');
      assert.match(error.message, /not registered at the rendezvous server .*; (reconnecting in \d+ ms|not reconnecting)/);
      return true;
    });
    assert.ok(performance.now() - started < 1000, 'connect() while disconnected fails fast');

    const reconnected = nextEvent<[ReconnectInfo]>(listener, 'reconnected');
    await servers.restart();
    const [again] = await reconnected;
    assert.equal(listener.registered, true);
    assert.ok(again.attempts >= 1, JSON.stringify(again));
    assert.ok(again.downMs > 0, JSON.stringify(again));
    // A new STUN proof from the same socket: on loopback the same address.
    assert.equal(again.srflx, listener.publicAddress);
    assert.equal(servers.server.rendezvous!.stats.peers, 1);

    other = await createPeer({ server: servers.url, identity: generateIdentity(), keepaliveMs: 0 });
    const connection = await exchange(other, listener);
    assert.equal(connection.path, 'direct-udp');
    // And the reconnected peer can start a session itself.
    await exchange(listener, other);
  } finally {
    await other?.close();
    await listener.close();
    await servers.stop();
  }
});

test('a lifetime measurement that the outage cut short starts over after the reconnection', { timeout: 60_000 }, async () => {
  const servers = await RestartableServer.start();
  const peer = await createPeer({ server: servers.url, identity: generateIdentity(), reconnect: { minDelayMs: 100, maxDelayMs: 200 } });
  try {
    // The measurement's probes go to the STUN server, which is gone: it ends without a result
    // (or, had its holders been set up, with every idle mapping looking dead: a 1 s keepalive).
    const ended = onceMatching<KeepaliveInfo>(peer, 'keepalive', (info) => info.lifetime?.final === true);
    await servers.stop();
    await ended;
    const restarted = onceMatching<KeepaliveInfo>(peer, 'keepalive', (info) => !info.lifetime);
    const reconnected = nextEvent(peer, 'reconnected');
    await servers.restart();
    await reconnected;
    const fresh = await restarted;
    assert.deepEqual([fresh.intervalMs, fresh.reason], [15_000, 'default']);
    assert.equal(peer.keepalive?.lifetime, null, 'measuring again');
  } finally {
    await peer.close();
    await servers.stop();
  }
});

test('an established connection carries on while the rendezvous server is gone', { timeout: 60_000 }, async () => {
  const servers = await RestartableServer.start();
  const a = await createPeer({ server: servers.url, identity: generateIdentity(), keepaliveMs: 0 });
  const b = await createPeer({ server: servers.url, identity: generateIdentity(), keepaliveMs: 0 });
  try {
    const incoming = nextEvent<[Connection]>(b, 'connection');
    const ca = await a.connect(b.peerId);
    const [cb] = await incoming;
    const gone = Promise.all([nextEvent(a, 'disconnected'), nextEvent(b, 'disconnected')]);
    await servers.stop();
    await gone;
    const data = randomBytes(256 << 10);
    const got = readAll(cb);
    ca.end(data);
    cb.end();
    assert.equal(sha(await got), sha(data));
    await readAll(ca);
  } finally {
    await a.close();
    await b.close();
  }
});

test('a peer replaced by a newer registration of its id does not reconnect', { timeout: 60_000 }, async () => {
  const servers = await RestartableServer.start();
  const identity = generateIdentity();
  // A tiny backoff: had it retried, it would have done so many times within the window below.
  const first = await createPeer({ server: servers.url, identity, keepaliveMs: 0, reconnect: { minDelayMs: 10, maxDelayMs: 20 } });
  let second: Peer | undefined;
  try {
    const disconnected = nextEvent<[RendezvousError, DisconnectInfo]>(first, 'disconnected');
    second = await createPeer({ server: servers.url, identity, keepaliveMs: 0 });
    const [reason, info] = await disconnected;
    assert.equal(reason.reason, 'replaced', reason.message);
    assert.equal(info.retryInMs, null);
    assert.equal(first.registered, false);
    await assert.rejects(first.connect(generateIdentity().peerId), /not registered at the rendezvous server \(replaced: .*\); not reconnecting/);
    // Had the first come back, it would have replaced the second in turn.
    let secondLost = false;
    second.on('disconnected', () => { secondLost = true; });
    // A bounded look for something that must not happen (50 x the backoff), not a synchronisation.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(secondLost, false);
    assert.equal(second.registered, true);
    assert.equal(servers.server.rendezvous!.stats.connections, 1);
  } finally {
    await second?.close();
    await first.close();
    await servers.stop();
  }
});

test('close() during the backoff stops it at once: the process exits with nothing left running', { timeout: 60_000 }, async () => {
  const servers = await RestartableServer.start();
  const child = new ProcessOutput(spawn(process.execPath, [CHILD, servers.url], { stdio: ['ignore', 'pipe', 'pipe'] }), 'reconnect-child');
  try {
    await child.waitFor([/^registered$/]);
    await servers.stop();
    // The child closes its peer on 'disconnected' while a 10-minute retry timer is pending, and
    // then has nothing more to do: it exits on its own only if close() left no timer or socket.
    const [line] = await child.waitFor([/"event":"disconnected"/]);
    assert.ok(Number((JSON.parse(line!) as { retryInMs: number }).retryInMs) >= 300_000, line);
    const output = await child.ended(20_000);
    assert.equal(child.exit, 'exit 0', output);
    assert.match(output, /^closed$/m);
  } finally {
    child.child.kill('SIGKILL');
    await servers.stop();
  }
});
