import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NatpunchError } from '../../src/errors.js';
import type { PunchInstruction } from '../../src/rendezvous/index.js';
import { type Attempt, type ReadyPath, planPaths, race, unprovenFamilyCandidates } from '../../src/peer/path-choice.js';
import { udpCheckTargets } from '../../src/peer/establish.js';
import type { RawPath } from '../../src/path/raw-path.js';

const none = { udp: false, tcp: false };
const address = { family: 4 as const, address: '192.0.2.1', port: 1 };
const udp = { type: 'srflx' as const, transport: 'udp' as const, address, priority: 1 };
const tcp = { ...udp, transport: 'tcp' as const };

function instruction(overrides: Partial<PunchInstruction>): PunchInstruction {
  return {
    session: 'AAAAAAAAAAAAAAAAAAAAAA', peer: 'x', role: 'controlling', remoteCandidates: [udp], localCandidates: [udp],
    remoteTcpCandidates: [tcp], localTcpCandidates: [tcp], remoteCapabilities: [], transport: 'auto', key: new Uint8Array(32), startAt: 0,
    remoteReachable: none, localReachable: none, remoteTcpListen: [], ...overrides,
  };
}

test('the plan: reversal when exactly one side signed it is reachable, punching otherwise, per transport', () => {
  const table: [Partial<PunchInstruction>, ReturnType<typeof planPaths>][] = [
    [{}, { udp: 'punch', tcp: 'simultaneous-open' }],
    [{ localReachable: { udp: true, tcp: true } }, { udp: 'answer', tcp: 'accept' }],
    [{ remoteReachable: { udp: true, tcp: true }, remoteTcpListen: [address] }, { udp: 'dial', tcp: 'dial' }],
    [{ remoteReachable: { udp: true, tcp: true } }, { udp: 'dial', tcp: 'simultaneous-open' }],
    // Both reachable over TCP: the controlling side dials the other's listener, which accepts.
    [{ localReachable: { udp: true, tcp: true }, remoteReachable: { udp: true, tcp: true }, remoteTcpListen: [address] }, { udp: 'punch', tcp: 'dial' }],
    [{ role: 'controlled', localReachable: { udp: true, tcp: true }, remoteReachable: { udp: true, tcp: true }, remoteTcpListen: [address] }, { udp: 'punch', tcp: 'accept' }],
    [{ localTcpCandidates: [] }, { udp: 'punch' }],
    [{ localTcpCandidates: [], remoteReachable: { udp: false, tcp: true }, remoteTcpListen: [address] }, { udp: 'punch', tcp: 'dial' }],
    [{ transport: 'udp', localReachable: { udp: true, tcp: true } }, { udp: 'answer' }],
    [{ transport: 'tcp', localReachable: { udp: true, tcp: true } }, { tcp: 'accept' }],
    [{ transport: 'tcp', remoteTcpCandidates: [] }, {}],
  ];
  for (const [overrides, expected] of table) assert.deepEqual(planPaths(instruction(overrides)), expected, JSON.stringify(overrides));
});

test('a side answering by reversal still checks the other side\'s candidates of a family its reachability was not proven for', () => {
  const v6 = (type: 'host' | 'srflx', a: string) => ({ type, transport: 'udp' as const, address: { family: 6 as const, address: a, port: 2 }, priority: 1 });
  const host4 = { ...udp, type: 'host' as const, address: { family: 4 as const, address: '10.0.1.2', port: 1 } };
  const remote = [host4, udp, v6('host', '2001:db8:1::2')];
  // Proven over IPv4 (its srflx): only the IPv6 candidate is left to punch to.
  const answering = instruction({ localReachable: { udp: true, tcp: false }, remoteCandidates: remote, localCandidates: [udp, v6('host', '2001:db8:2::2')] });
  assert.deepEqual(unprovenFamilyCandidates(answering).map((c) => c.address.address), ['2001:db8:1::2']);
  assert.deepEqual(udpCheckTargets(answering, 'answer').map((c) => c.address.address), ['2001:db8:1::2']);
  // No srflx signed (no NAT: its address is signed as host): the dial-back proved IPv4.
  const open = instruction({ localReachable: { udp: true, tcp: false }, remoteCandidates: remote, localCandidates: [host4] });
  assert.deepEqual(unprovenFamilyCandidates(open).map((c) => c.address.address), ['2001:db8:1::2']);
  // IPv4 only, as every lab before IPv6: the answering side sends nothing first.
  assert.deepEqual(udpCheckTargets(instruction({ remoteCandidates: [host4, udp] }), 'answer'), []);
  // Proven over IPv6: the IPv4 candidates are the ones to punch to.
  const over6 = instruction({ remoteCandidates: remote, localCandidates: [v6('srflx', '2001:db8:2::2')] });
  assert.deepEqual(unprovenFamilyCandidates(over6).map((c) => c.address.address), ['10.0.1.2', '192.0.2.1']);
});

interface Controlled extends Attempt {
  succeed(): ReadyPath & { closed: boolean };
  fail(message: string): void;
  aborted: boolean;
}

function attempt(kind: 'udp' | 'tcp'): Controlled {
  let resolve!: (path: ReadyPath) => void;
  let reject!: (error: Error) => void;
  const ready = new Promise<ReadyPath>((res, rej) => { resolve = res; reject = rej; });
  ready.catch(() => undefined);
  const a: Controlled = {
    kind, ready, aborted: false,
    abort: () => { a.aborted = true; },
    succeed: () => {
      const path = { kind, path: { kind: kind === 'udp' ? 'direct-udp' : 'direct-tcp', remote: '192.0.2.1:1' } as RawPath, closed: false, close: () => { path.closed = true; } };
      resolve(path);
      return path;
    },
    fail: (message) => reject(new NatpunchError('ERR_TRANSPORT', message)),
  };
  return a;
}

test('race: UDP ready first wins at once; TCP is aborted', async () => {
  const [udp, tcp] = [attempt('udp'), attempt('tcp')];
  const winner = race([udp, tcp], 60_000);
  udp.succeed();
  assert.equal((await winner).kind, 'udp');
  assert.equal(tcp.aborted, true);
});

test('race: TCP ready first waits for UDP within the grace, then UDP wins and the TCP path is closed', async () => {
  const [udp, tcp] = [attempt('udp'), attempt('tcp')];
  const winner = race([udp, tcp], 60_000);
  const tcpPath = tcp.succeed();
  await Promise.resolve();
  udp.succeed();
  assert.equal((await winner).kind, 'udp');
  assert.equal(tcpPath.closed, true, 'the losing TCP connection is closed');
});

test('race: TCP ready and UDP failing picks TCP without waiting out the grace', async () => {
  const [udp, tcp] = [attempt('udp'), attempt('tcp')];
  const winner = race([udp, tcp], 60_000);
  tcp.succeed();
  udp.fail('no UDP');
  assert.equal((await winner).kind, 'tcp');
});

test('race: TCP ready and UDP silent picks TCP after the grace and aborts UDP', async () => {
  const [udp, tcp] = [attempt('udp'), attempt('tcp')];
  const winner = race([udp, tcp], 20);
  tcp.succeed();
  assert.equal((await winner).kind, 'tcp');
  assert.equal(udp.aborted, true);
});

test('race: with no grace (the controlled side) the first ready path wins', async () => {
  const [udp, tcp] = [attempt('udp'), attempt('tcp')];
  const winner = race([udp, tcp], 0);
  tcp.succeed();
  assert.equal((await winner).kind, 'tcp');
  assert.equal(udp.aborted, true);
});

test('race: when every technique fails, ERR_TRANSPORT names each failure', async () => {
  const [udp, tcp] = [attempt('udp'), attempt('tcp')];
  const winner = race([udp, tcp], 0);
  udp.fail('checks timed out');
  tcp.fail('connects refused');
  await assert.rejects(winner, (e: unknown) => e instanceof NatpunchError && e.code === 'ERR_TRANSPORT'
    && /^no direct path: UDP: checks timed out; TCP: connects refused$/.test(e.message));
});

test('race with onLatePath: the TCP path held during the grace and a loser that completes later are kept, not closed or aborted', async () => {
  const late: ReadyPath[] = [];
  const [udp, tcp] = [attempt('udp'), attempt('tcp')];
  const winner = race([udp, tcp], 60_000, { onLatePath: (path) => late.push(path) });
  const tcpPath = tcp.succeed();
  await Promise.resolve();
  udp.succeed();
  assert.equal((await winner).kind, 'udp');
  assert.deepEqual(late.map((p) => p.kind), ['tcp']);
  assert.equal(tcpPath.closed, false);

  const kept: ReadyPath[] = [];
  const [udp2, tcp2] = [attempt('udp'), attempt('tcp')];
  const first = race([udp2, tcp2], 0, { onLatePath: (path) => kept.push(path) });
  udp2.succeed();
  assert.equal((await first).kind, 'udp');
  assert.equal(tcp2.aborted, false, 'the loser keeps going');
  const lateTcp = tcp2.succeed();
  await Promise.resolve();
  await Promise.resolve();
  assert.deepEqual(kept.map((p) => p.kind), ['tcp']);
  assert.equal(lateTcp.closed, false);
});
