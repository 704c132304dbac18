/**
 * Versions and capabilities: hello offers the versions and capabilities a server has, register
 * names the highest common version and the capabilities the peer wants, registered says what
 * was agreed. Unknown capability names are ignored; no common version is a clear error.
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { once } from '../support/wait.js';
import { generateIdentity } from '../../src/identity/index.js';
import {
  type PunchInstruction, CAPABILITIES, DOMAIN, PROTOCOL_VERSION, RendezvousError, SUPPORTED_VERSIONS, negotiateVersion, signObject,
} from '../../src/rendezvous/index.js';
import { RawClient, Resources, startPeer, startServers } from './helpers.js';

const resources = new Resources();
afterEach(() => resources.close());

test('negotiateVersion picks the highest version both speak, and says both lists when there is none', () => {
  assert.deepEqual(SUPPORTED_VERSIONS, [2]);
  assert.equal(PROTOCOL_VERSION, 2);
  const table: [{ version: number; versions?: number[] }, number | RegExp][] = [
    [{ version: 2 }, 2],
    [{ version: 9, versions: [1, 2, 9] }, 2],
    [{ version: 2, versions: [2] }, 2],
    [{ version: 1 }, /^hello\.versions: the server speaks version 1, this client speaks 2: upgrade the older side$/],
    [{ version: 3, versions: [3] }, /the server speaks version 3, this client speaks 2/],
    [{ version: 2, versions: [1] }, /the server speaks version 1,/],
  ];
  for (const [hello, expected] of table) {
    if (typeof expected === 'number') {
      assert.equal(negotiateVersion(hello), expected, JSON.stringify(hello));
    } else {
      assert.throws(() => negotiateVersion(hello), (error: unknown) => {
        assert.ok(error instanceof RendezvousError);
        assert.equal(error.reason, 'unsupported-version');
        assert.match(error.message, expected);
        return true;
      }, JSON.stringify(hello));
    }
  }
});

test('hello offers every version and capability; register negotiates; unknown capabilities are ignored', async () => {
  const { url } = await startServers(resources);
  const raw = await RawClient.open(resources, url);
  const hello = await raw.next();
  assert.deepEqual([hello['version'], hello['versions'], hello['capabilities']], [2, [2], [...CAPABILITIES]]);
  const identity = generateIdentity();
  const signed = signObject(identity, DOMAIN.register, { peerId: identity.peerId, nonce: hello['nonce'], privateEndpoints: [], srflx: null });
  const registered = await raw.ask({ type: 'register', id: 7, version: 2, capabilities: ['from-the-future', 'trickle'], signed });
  assert.deepEqual([registered.type, registered['id'], registered['version'], registered['capabilities']], ['registered', 7, 2, ['trickle']]);
});

test('a register naming a version hello did not offer is refused with unsupported-version, answering its id', async () => {
  const { url, server } = await startServers(resources);
  for (const version of [1, 3]) {
    const raw = await RawClient.open(resources, url);
    const hello = await raw.next();
    const identity = generateIdentity();
    const signed = signObject(identity, DOMAIN.register, { peerId: identity.peerId, nonce: hello['nonce'], privateEndpoints: [], srflx: null });
    const reply = await raw.ask({ type: 'register', id: 3, version, capabilities: [], signed });
    assert.deepEqual([reply.type, reply['code'], reply['id']], ['error', 'unsupported-version', 3]);
    assert.equal(reply['message'], `register.version: ${version}, but this server speaks 2`);
  }
  assert.equal(server.stats.peers, 0);
});

test('a peer signs only the capabilities it negotiated; the other side reads them from the signature', async () => {
  const { url } = await startServers(resources);
  const a = await startPeer(resources, url);
  const b = await startPeer(resources, url, { capabilities: [] });
  assert.deepEqual(a.client.negotiated, { version: 2, capabilities: ['trickle', 'report'] });
  assert.deepEqual(b.client.negotiated, { version: 2, capabilities: [] });
  const incoming = once(b.client, 'punch') as Promise<[PunchInstruction]>;
  const initiator = await a.client.connect(b.identity.peerId);
  const [target] = await incoming;
  assert.deepEqual(initiator.remoteCapabilities, [], 'b asked for none');
  // 'report' concerns only peer and server: it is negotiated, never signed for the other peer.
  assert.deepEqual(target.remoteCapabilities, ['trickle']);
  // Nobody may trickle to b: a's client says so before the server is asked.
  await assert.rejects(a.client.trickle(initiator.session, []), (error: unknown) => {
    assert.ok(error instanceof RendezvousError);
    assert.equal(error.reason, 'unsupported-capability');
    assert.match(error.message, /did not sign the 'trickle' capability/);
    return true;
  });
});

test('a server offering no capabilities: peers negotiate none and sign none', async () => {
  const { url } = await startServers(resources, { capabilities: [] });
  const a = await startPeer(resources, url);
  const b = await startPeer(resources, url);
  assert.deepEqual(a.client.negotiated.capabilities, []);
  const incoming = once(b.client, 'punch') as Promise<[PunchInstruction]>;
  await a.client.connect(b.identity.peerId);
  const [target] = await incoming;
  assert.deepEqual(target.remoteCapabilities, []);
});
