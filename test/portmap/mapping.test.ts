import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PortMapError } from '../../src/errors.js';
import { PortMapping, type Grant, type MappingDriver } from '../../src/portmap/mapping.js';
import { FakeClock } from '../transport/fake-clock.js';

/** A driver whose answers the test scripts; records what it was asked. */
class ScriptedDriver implements MappingDriver {
  readonly method = 'nat-pmp';
  readonly gateway = '10.0.1.1';
  readonly calls: string[] = [];
  answers: (Grant | Error)[] = [];
  closed = false;

  async map(lifetimeSeconds: number): Promise<Grant> {
    this.calls.push(`map ${lifetimeSeconds}`);
    const answer = this.answers.shift() ?? { externalAddress: '203.0.113.1', externalPort: 5000, lifetimeSeconds };
    if (answer instanceof Error) throw answer;
    return answer;
  }

  async unmap(): Promise<void> {
    this.calls.push('unmap');
  }

  renewDelayMs(lifetimeSeconds: number): number {
    return (lifetimeSeconds * 1000) / 2;
  }

  close(): void {
    this.closed = true;
  }
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('renews at half the lifetime, again and again, and reports a moved external port as changed', async () => {
  const clock = new FakeClock();
  const driver = new ScriptedDriver();
  const mapping = new PortMapping(driver, { externalAddress: '203.0.113.1', externalPort: 5000, lifetimeSeconds: 100 }, { protocol: 'udp', internalPort: 5000, requestedLifetimeSeconds: 100, clock });
  const changed: Grant[] = [];
  mapping.on('changed', (grant) => changed.push(grant));
  clock.advance(49_999);
  await flush();
  assert.deepEqual(driver.calls, []);
  clock.advance(1);
  await flush();
  assert.deepEqual(driver.calls, ['map 100']);
  driver.answers.push({ externalAddress: '203.0.113.1', externalPort: 6000, lifetimeSeconds: 60, gatewayRestarted: true });
  clock.advance(50_000);
  await flush();
  assert.deepEqual(driver.calls, ['map 100', 'map 100']);
  assert.equal(mapping.externalPort, 6000);
  assert.equal(mapping.lifetimeSeconds, 60);
  assert.deepEqual(changed.map((g) => g.externalPort), [6000]);
  clock.advance(30_000); // half of the 60 s the gateway granted this time
  await flush();
  assert.equal(driver.calls.length, 3);
  await mapping.close();
  assert.deepEqual(driver.calls.slice(3), ['unmap']);
  assert.equal(driver.closed, true);
  clock.advance(1_000_000);
  await flush();
  assert.equal(driver.calls.length, 4, 'closed: no more renewals');
});

test('a failed renewal is retried while the mapping lives, and reported as lost when it expires', async () => {
  const clock = new FakeClock();
  const driver = new ScriptedDriver();
  const mapping = new PortMapping(driver, { externalAddress: '203.0.113.1', externalPort: 5000, lifetimeSeconds: 20 }, { protocol: 'udp', internalPort: 5000, requestedLifetimeSeconds: 20, clock });
  const failures: [string, boolean][] = [];
  mapping.on('renew-failed', (error, final) => failures.push([error.reason, final]));
  const silence = new PortMapError('no-gateway', 'NAT-PMP map: no answer');
  driver.answers.push(silence, silence, silence);
  for (let i = 0; i < 4; i++) {
    clock.advance(5_000);
    await flush();
  }
  assert.deepEqual(failures, [['no-gateway', false], ['lost', true]]);
  await mapping.close();
});

test('close() deletes once, and says when the gateway could not be told', async () => {
  const driver = new ScriptedDriver();
  driver.unmap = async () => { throw new PortMapError('no-gateway', 'no answer'); };
  const mapping = new PortMapping(driver, { externalAddress: '203.0.113.1', externalPort: 5000, lifetimeSeconds: 600 }, { protocol: 'tcp', internalPort: 22, requestedLifetimeSeconds: 600, clock: new FakeClock() });
  const closing = mapping.close();
  assert.equal(mapping.close(), closing);
  await assert.rejects(closing, (error: unknown) => error instanceof PortMapError && error.reason === 'lost' && /could not delete the mapping \(no answer\); it expires by itself in 600 s/.test(error.message));
  await assert.rejects(mapping.renew(), /closed/);
});
