/**
 * Acceptance (issue 7): connections that survive the network changing under them. A transfer of
 * 16 MiB each way, paced over ~10 s through `natpunch listen` / `connect`, while the NAT routers
 * forget their mappings; both sides must exit 0 with every byte intact and no stall longer than
 * 2 s, and report each change of path with its reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { MAX_GAP_MS, inLab, pacedTransfer, pathEvents } from '../support/paced-transfer.js';

test('conntrack -F in both NAT routers, three times mid-transfer: 16 MiB each way intact, no stall over 2 s', { timeout: 240_000 }, async (t) => {
  await inLab(t, { a: { kind: 'port-restricted' }, b: { kind: 'port-restricted' } }, async (lab, dir) => {
    const run = await pacedTransfer(lab, dir);
    // The disturbance is the scenario, at fixed points of the paced transfer, not a synchronisation.
    for (const at of [2_000, 2_000, 2_000]) {
      await delay(at);
      await Promise.all([lab.routers['a']!.forget('conntrack'), lab.routers['b']!.forget('conntrack')]);
    }
    const reports = await run.finished();
    assert.ok(reports.listener.maxGapMs <= MAX_GAP_MS, `the listener's longest stall: ${reports.listener.maxGapMs} ms`);
    assert.ok(reports.connector.maxGapMs <= MAX_GAP_MS, `the connector's longest stall: ${reports.connector.maxGapMs} ms`);
    // Port-preserving NATs give the same mappings back: any path change is still reported with a reason.
    for (const e of [...pathEvents(run.listener), ...pathEvents(run.connector)]) assert.match(String(e['reason']), /^(upgrade|rebinding|failover|network-change)$/);
  });
});

test('the connecting side\'s NAT reboots mid-transfer (eim-random-port × port-restricted): a new external port, a re-punch, 16 MiB each way intact', { timeout: 240_000 }, async (t) => {
  await inLab(t, { a: { kind: 'eim-random-port' }, b: { kind: 'port-restricted' } }, async (lab, dir) => {
    const run = await pacedTransfer(lab, dir, '--transport udp');
    const before = String(run.listener.events.find((e) => e['event'] === 'connected')?.['remote']);
    await delay(3_000);
    await lab.routers['a']!.forget('reboot');
    const moved = await run.listener.until((e) => e['event'] === 'path', 'a path event after the reboot', 30_000)
      .catch((error: Error) => { throw new Error(`${error.message}\nthe connector's stderr:\n${run.connector.stderr()}`); });
    const reports = await run.finished();
    assert.notEqual(moved['remote'], before, 'the listener now reaches the connector at its new external port');
    assert.equal(moved['path'], 'direct-udp');
    assert.match(String(moved['reason']), /^(rebinding|network-change)$/, JSON.stringify(moved));
    // The connector still reaches the listener at the same address: for it the path came back.
    for (const e of pathEvents(run.connector)) assert.match(String(e['reason']), /^(rebinding|network-change|failover)$/);
    assert.ok(reports.listener.maxGapMs <= MAX_GAP_MS, `the listener's longest stall: ${reports.listener.maxGapMs} ms\n${run.listener.stderr()}\n${run.connector.stderr()}`);
    assert.ok(reports.connector.maxGapMs <= MAX_GAP_MS, `the connector's longest stall: ${reports.connector.maxGapMs} ms\n${run.listener.stderr()}\n${run.connector.stderr()}`);
  });
});

test('a connection that started on TCP (UDP blocked) moves to UDP when UDP is let through, and back to TCP when it is blocked again: 16 MiB each way intact', { timeout: 240_000 }, async (t) => {
  await inLab(t, { a: { kind: 'port-restricted' }, b: { kind: 'port-restricted' } }, async (lab, dir) => {
    const router = lab.routers['a']!;
    await router.blockUdp(true);
    const run = await pacedTransfer(lab, dir, '', 20);
    const connected = run.connector.events.find((e) => e['event'] === 'connected');
    assert.equal(connected?.['path'], 'direct-tcp', run.connector.stderr());
    await router.blockUdp(false);
    const upgraded = await run.connector.until((e) => e['event'] === 'path' && e['path'] === 'direct-udp', 'a move to UDP', 40_000);
    assert.equal(upgraded['reason'], 'upgrade', JSON.stringify(upgraded));
    await router.blockUdp(true);
    const back = await run.connector.until((e) => e['event'] === 'path' && e['path'] === 'direct-tcp', 'a move back to TCP', 20_000);
    assert.equal(back['reason'], 'failover', `the connector's moves: ${JSON.stringify(pathEvents(run.connector))}`);
    await run.finished();
    const listenerPaths = pathEvents(run.listener).map((e) => `${String(e['path'])}/${String(e['reason'])}`);
    assert.deepEqual(listenerPaths, ['direct-udp/upgrade', 'direct-tcp/failover'], run.listener.stderr());
  });
});

test('the connecting peer\'s LAN address changes mid-transfer (new address, new route): the connection follows, 16 MiB each way intact', { timeout: 240_000 }, async (t) => {
  await inLab(t, { a: { kind: 'port-restricted' }, b: { kind: 'port-restricted' } }, async (lab, dir) => {
    const host = lab.hosts['a1']!;
    const shown = await host.exec(['sh', '-c', 'ip -o -4 addr show dev eth0; ip route show default']);
    const cidr = /inet (\d+\.\d+\.\d+)\.(\d+)\/(\d+)/.exec(shown.stdout);
    const gateway = /default via (\S+)/.exec(shown.stdout)?.[1];
    assert.ok(cidr && gateway, `a1's address and route: ${shown.stdout}`);
    const [, net, last, prefix] = cidr;
    const renumbered = `${net}.${Number(last) + 100}`;
    const run = await pacedTransfer(lab, dir);
    await delay(3_000);
    // What a new DHCP lease does: the old address gone, the new one, the route again. (Deleting a
    // primary address also deletes its secondaries, so the new one cannot be added first.)
    const changed = await host.exec(['sh', '-c',
      `ip addr del ${net}.${last}/${prefix} dev eth0 && ip addr add ${renumbered}/${prefix} dev eth0 && ip route replace default via ${gateway}`], { timeoutMs: 20_000 });
    assert.equal(changed.code, 0, changed.stderr);
    const moved = await run.listener.until((e) => e['event'] === 'path', 'a path event after the address change', 30_000)
      .catch((error: Error) => { throw new Error(`${error.message}\nthe connector's stderr:\n${run.connector.stderr()}`); });
    assert.match(String(moved['reason']), /^(rebinding|network-change)$/, JSON.stringify(moved));
    await run.finished();
  });
});
