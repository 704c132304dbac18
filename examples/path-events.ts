/**
 * React to path changes. A connection holds every path to its peer (direct UDP, direct TCP, a
 * TURN relay) and moves its one stream between them without losing a byte: to a better path
 * when one proves itself ('upgrade'), when the peer's NAT gives it a new address ('rebinding'),
 * to a standby when the active path dies ('failover'), or after punching again when every path
 * went silent ('network-change'). Each move is a 'path' event; a path that has proved itself
 * and waits to take over is a 'standby' event. Run: `node dist/examples/path-events.js`.
 *
 * On loopback nothing moves: the connection starts direct and stays so, and the relay the server
 * offers becomes its standby. Through real NATs (a NAT reboot, a Wi-Fi to LTE switch) the same
 * handlers see the moves: test/lab/path-recovery.test.ts makes them happen in the NAT lab.
 */
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { createPeer, generateIdentity, type Connection, type PathInfo, type StandbyInfo } from 'natpunch';
import { startRendezvous } from './rendezvous.js';

/** How long to wait for the relay to become a standby (it allocates on the server first). */
const STANDBY_WAIT_MS = 10_000;

/** Log how a connection is carried, now and whenever that changes. */
function watch(name: string, connection: Connection): void {
  console.log(`${name}: connected over ${connection.path} (${connection.technique}, ${connection.remote})`);
  connection.on('path', ({ path, technique, remote, reason }: PathInfo) => {
    // A real program might show it, or adapt to it: e.g. lower a video bitrate on 'relay'.
    console.log(`${name}: moved to ${path} (${technique}, ${remote}) because of ${reason}`);
  });
  connection.on('standby', ({ path, technique }: StandbyInfo) => {
    console.log(`${name}: standby ready: ${path} (${technique})`);
  });
}

const rendezvous = await startRendezvous();
const options = { server: rendezvous.url, bindAddress: '127.0.0.1', ipv6: false };
const alice = await createPeer({ ...options, identity: generateIdentity() });
const bob = await createPeer({ ...options, identity: generateIdentity() });
try {
  bob.on('connection', (connection: Connection) => {
    watch('bob', connection);
    connection.pipe(connection); // an echo service
  });
  const connection = await alice.connect(bob.peerId); // transport 'auto': UDP, TCP and the relay race
  watch('alice', connection);

  // Wait (bounded) for the relay to prove itself as a standby.
  const standby = once(connection, 'standby').then(() => true);
  const timeout = new Promise<boolean>((resolve) => setTimeout(resolve, STANDBY_WAIT_MS, false).unref());
  if (!(await Promise.race([standby, timeout]))) console.log(`alice: no standby path within ${STANDBY_WAIT_MS} ms`);

  // Every path the connection holds, for diagnostics.
  for (const p of connection.paths) {
    console.log(`alice: holds ${p.path} (${p.technique})${p.active ? ', active' : ''}${p.validated ? ', validated' : ''}`);
  }

  // The stream works whatever carries it.
  connection.end('ping');
  const echoed: Buffer[] = [];
  connection.on('data', (chunk: Buffer) => echoed.push(chunk));
  await finished(connection);
  console.log(`alice: echo "${Buffer.concat(echoed).toString()}" over ${connection.path}`);
} finally {
  await alice.close();
  await bob.close();
  await rendezvous.stop();
}
