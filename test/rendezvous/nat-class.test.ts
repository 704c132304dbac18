import { test } from 'node:test';
import assert from 'node:assert/strict';
import { natClass } from '../../src/rendezvous/nat-class.js';
import { techniqueHint } from '../../src/rendezvous/technique-hint.js';
import type { AcceptBody, IntentBody } from '../../src/rendezvous/messages.js';
import { candidate } from './helpers.js';

test('natClass: what registration proved, in order: no srflx, own address, dial-back let in, else a filtering NAT', () => {
  const table: [string | null, string[], { udp: boolean; tcp: boolean } | undefined, string][] = [
    [null, ['192.168.1.5:4000'], { udp: true, tcp: true }, 'no-udp'],
    ['198.51.100.7:4000', ['198.51.100.7:4000'], undefined, 'public'],
    ['198.51.100.7:5000', ['198.51.100.7:4000'], { udp: true, tcp: false }, 'public'],
    ['[::ffff:198.51.100.7]:4000', ['198.51.100.7:4000'], undefined, 'public'],
    ['203.0.113.9:62000', ['192.168.1.5:4000'], { udp: true, tcp: false }, 'open'],
    ['203.0.113.9:62000', ['192.168.1.5:4000'], { udp: false, tcp: true }, 'nat'],
    ['203.0.113.9:62000', ['192.168.1.5:4000'], undefined, 'nat'],
  ];
  for (const [srflx, privateEndpoints, reachable, expected] of table) {
    assert.equal(natClass({ srflx, privateEndpoints }, reachable), expected, `${srflx} ${privateEndpoints} ${JSON.stringify(reachable)}`);
  }
});

test('techniqueHint: what the two signed offers point at, hardest case first', () => {
  const intent = (extra: Partial<IntentBody> = {}): IntentBody => ({
    from: 'a', to: 'b', nonce: 'n', expires: 0, session: 's', candidates: [candidate('203.0.113.1:1000', 'srflx')], ...extra,
  });
  const accept = (extra: Partial<AcceptBody> = {}): AcceptBody => ({ session: 's', intentHash: 'h', nonce: 'n', candidates: [candidate('203.0.113.2:2000', 'srflx')], ...extra }) as AcceptBody;
  const predicted = { ...candidate('203.0.113.2:2010', 'predicted'), range: { first: 2000, last: 2063 } };
  const table: [IntentBody, AcceptBody, string][] = [
    [intent({ transport: 'relay' }), accept({ natMapping: 'random-per-destination' }), 'relay'],
    [intent(), accept({ natMapping: 'random-per-destination', candidates: [predicted] }), 'birthday'],
    [intent(), accept({ candidates: [predicted] }), 'prediction'],
    [intent({ reachable: ['udp'] }), accept(), 'reversal'],
    [intent({ reachable: ['udp'] }), accept({ reachable: ['udp'] }), 'hole-punch'],
    [intent({ transport: 'tcp', reachable: ['udp'] }), accept({ reachable: ['tcp'] }), 'reversal'],
    [intent(), accept({ candidates: [candidate('203.0.113.2:2000', 'mapped')] }), 'port-mapping'],
    [intent(), accept(), 'hole-punch'],
  ];
  for (const [i, a, expected] of table) assert.equal(techniqueHint(i, a), expected, JSON.stringify([i, a]));
});
