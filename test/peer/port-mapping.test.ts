import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PortMapError } from '../../src/errors.js';
import { PeerPortMapping } from '../../src/peer/port-mapping.js';
import { PortMapping, type Grant, type MappingDriver } from '../../src/portmap/mapping.js';
import type { mapPort } from '../../src/portmap/index.js';
import { FakeClock } from '../transport/fake-clock.js';

/** A mapping held by a driver that records calls, as mapPort would hand it over. */
function fakeMapping(calls: string[]): PortMapping {
  const driver: MappingDriver = {
    method: 'pcp', gateway: '10.0.1.1',
    map: async (lifetimeSeconds): Promise<Grant> => { calls.push('map'); return { externalAddress: '203.0.113.10', externalPort: 40001, lifetimeSeconds }; },
    unmap: async () => { calls.push('unmap'); },
    renewDelayMs: (l) => l * 500,
    close: () => calls.push('close'),
  };
  return new PortMapping(driver, { externalAddress: '203.0.113.10', externalPort: 40001, lifetimeSeconds: 7200 }, { protocol: 'udp', internalPort: 40000, requestedLifetimeSeconds: 7200, clock: new FakeClock() });
}

test('a mapping made at start-up becomes a signed mapped candidate; close deletes it', async () => {
  const calls: string[] = [];
  let asked: Parameters<typeof mapPort>[0] | undefined;
  const peerMapping = new PeerPortMapping(40000, {}, async (options) => { asked = options; return fakeMapping(calls); });
  const mapped = new Promise((resolve) => peerMapping.once('mapped', resolve));
  await peerMapping.settled;
  assert.deepEqual({ protocol: asked?.protocol, internalPort: asked?.internalPort, timeoutMs: asked?.timeoutMs }, { protocol: 'udp', internalPort: 40000, timeoutMs: 2000 });
  assert.deepEqual(await mapped, { method: 'pcp', protocol: 'udp', internalPort: 40000, gateway: '10.0.1.1', externalAddress: '203.0.113.10', externalPort: 40001, lifetimeSeconds: 7200 });
  assert.deepEqual(peerMapping.candidate(), { type: 'mapped', address: { family: 4, address: '203.0.113.10', port: 40001 } });
  await peerMapping.close();
  assert.deepEqual(calls, ['unmap', 'close']);
  assert.equal(peerMapping.candidate(), undefined);
});

test('a failure is kept and reported, never thrown: the peer just has no mapped candidate', async () => {
  const failure = new PortMapError('double-nat', 'mapped to 100.64.0.9: double NAT', { externalAddress: '100.64.0.9' });
  const peerMapping = new PeerPortMapping(40000, {}, async () => { throw failure; });
  const failed = new Promise((resolve) => peerMapping.once('failed', resolve));
  await peerMapping.settled;
  assert.equal(await failed, failure);
  assert.equal(peerMapping.error, failure);
  assert.equal(peerMapping.candidate(), undefined);
  await peerMapping.close();
});

test('a mapping that arrives after the peer closed is deleted at once', async () => {
  const calls: string[] = [];
  let deliver!: (m: PortMapping) => void;
  const peerMapping = new PeerPortMapping(40000, {}, (options) => new Promise((resolve) => {
    deliver = resolve;
    assert.ok(options.signal);
  }));
  await peerMapping.close();
  deliver(fakeMapping(calls));
  await peerMapping.settled;
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(calls, ['unmap', 'close']);
  assert.equal(peerMapping.info, null);
});

test('a mapping lost for good (renewals failed until expiry) is asked for again, and the new one is signed', async (t) => {
  const clock = new FakeClock();
  const failing: MappingDriver = {
    method: 'nat-pmp', gateway: '10.0.1.1',
    map: async () => { throw new PortMapError('no-gateway', 'NAT-PMP map: no answer'); },
    unmap: async () => undefined,
    renewDelayMs: (l) => l * 500,
    close: () => undefined,
  };
  const first = new PortMapping(failing, { externalAddress: '203.0.113.10', externalPort: 40001, lifetimeSeconds: 8 }, { protocol: 'udp', internalPort: 40000, requestedLifetimeSeconds: 8, clock });
  const calls: string[] = [];
  const answers = [first, fakeMapping(calls)];
  let asked = 0;
  const peerMapping = new PeerPortMapping(40000, { retryAfterLossMs: 10 }, async () => { asked++; return answers.shift()!; });
  // The retry timer is unref'd (a peer's socket keeps the process alive); stand in for the socket.
  const alive = setInterval(() => undefined, 1000);
  t.after(() => clearInterval(alive));
  await peerMapping.settled;
  assert.equal(peerMapping.candidate()?.address.port, 40001);
  const failed = new Promise<PortMapError>((resolve) => peerMapping.once('failed', resolve));
  const again = new Promise((resolve) => peerMapping.once('mapped', resolve));
  clock.advance(4_000); // the renewal at half of 8 s fails with 4 s left: lost
  assert.equal((await failed).reason, 'lost');
  assert.equal(peerMapping.candidate(), undefined, 'a lost mapping is not signed');
  await again;
  assert.equal(asked, 2);
  assert.equal(peerMapping.candidate()?.address.address, '203.0.113.10');
  await peerMapping.close();
  assert.deepEqual(calls, ['unmap', 'close']);
});
