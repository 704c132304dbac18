import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { StunServer } from '../../src/stun/server.js';
import { checkNat } from '../../src/nat/check.js';
import { explainReport } from '../../src/nat/explain.js';

// Without a NAT in the way (loopback), check must say exactly that.
let server: StunServer;
before(async () => { server = await StunServer.listen({ address: '127.0.0.1', altAddress: '127.0.0.2', port: 0, altPort: 0 }); });
after(async () => { await server.close(); });

test('on loopback: no NAT, endpoint-independent both ways, open internet, ports preserved', async () => {
  const report = await checkNat({ server: server.addresses[0]!, lifetime: false });
  assert.equal(report.udp, true);
  assert.equal(report.natted, false);
  assert.equal(report.mapping, 'endpoint-independent');
  assert.equal(report.filtering, 'endpoint-independent');
  assert.equal(report.rfc3489, 'open-internet');
  assert.equal(report.portAllocation, 'preserving');
  assert.equal(report.hairpin, null);
  assert.equal(report.otherAddress, `127.0.0.2:${server.addresses[3]!.port}`);
  assert.match(explainReport(report), /directly reachable/);
});

test('with nothing listening, UDP is reported blocked', async () => {
  const report = await checkNat({ server: { family: 4, address: '127.0.0.1', port: 9 }, retransmission: { rto: 20, rc: 2, rm: 2 } });
  assert.equal(report.udp, false);
  assert.equal(report.rfc3489, 'udp-blocked');
  assert.equal(report.mappedAddress, null);
  assert.match(explainReport(report), /UDP is blocked/);
});
