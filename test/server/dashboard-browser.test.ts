import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatpunchServer } from '../../src/server/natpunch-server.js';
import { createPeer, generateIdentity, type Connection, type Peer } from '../../src/index.js';
import { TurnClient } from '../../src/turn/client.js';
import { openUdpTransport } from '../../src/turn/client-transport.js';
import { launchChromium, openBrowserNetwork, skipUnlessChromium, type BrowserNetwork, type HeadlessChromium } from '../support/chromium.js';
import { decodePng } from '../support/png.js';
import { parsePrometheusText, sampleValue, sumOf } from '../support/prometheus-text.js';
import { once, until } from '../support/wait.js';
import { REPORTED_TECHNIQUES } from '../../src/rendezvous/messages.js';
import { reportChannel } from '../../src/rendezvous/server-events.js';

/**
 * The dashboard in a real headless Chromium: it loads from the server alone (no other URL),
 * shows live numbers, and they are the numbers /metrics gives at the same moment. A screenshot
 * of it must be a whole PNG of the window's size (NATPUNCH_KEEP_SCREENSHOT=1 keeps it and
 * prints where).
 */

const VIEWPORT = { width: 1280, height: 900 };

/** The DOM as far as this test reads it in the page. */
interface PageElement {
  id: string;
  dataset: Record<string, string | undefined>;
  cells: PageElement[];
  textContent: string | null;
}
interface PageDocument {
  body: PageElement;
  querySelectorAll(selector: string): Iterable<PageElement>;
}

test('the dashboard in headless Chromium shows live numbers that match /metrics', { timeout: 180_000 }, async (t) => {
  if (skipUnlessChromium(t)) return;
  // The browser reaches the server on an address of its own (a veth into its namespace, as
  // root); the peers and the TURN client stay on loopback. Off loopback, the dashboard is served
  // only with the metrics token: the browser sends it with every request, as an operator's
  // browser behind a proxy that adds it would.
  const network: BrowserNetwork = await openBrowserNetwork();
  if (network.notIsolated) t.diagnostic(`Chromium shares this network namespace (${network.notIsolated})`);
  const isolated = network.netns !== undefined;
  const metricsToken = randomBytes(16).toString('hex');
  const authorization: Record<string, string> = isolated ? { Authorization: `Bearer ${metricsToken}` } : {};
  const server = await NatpunchServer.listen({
    address: '127.0.0.1', altAddress: '127.0.0.2', port: 0, altPort: 0, httpPort: 0,
    ...(isolated ? { extraAddresses: [network.hostAddress], metricsToken } : {}),
    relay: { users: new Map([['alice', 'wonderland']]), allow: ['127.0.0.0/8'] },
  }).catch(async (error: unknown) => { await network.close(); throw error; });
  const peers: Peer[] = [];
  const sockets: dgram.Socket[] = [];
  let turn: TurnClient | undefined;
  let browser: HeadlessChromium | undefined;
  const shots = await mkdtemp(join(tmpdir(), 'natpunch-dashboard-'));
  try {
    // Something to show: two peers, one accepted connect and one to nobody, a relay allocation
    // that has relayed 1500 bytes each way.
    const [a, b] = [await createPeer({ server: server.rendezvousUrl!, identity: generateIdentity() }), await createPeer({ server: server.rendezvousUrl!, identity: generateIdentity() })];
    peers.push(a, b);
    const reports: unknown[] = [];
    const onReport = (message: unknown): void => { if ((message as { server: object }).server === server.rendezvous) reports.push(message); };
    reportChannel.subscribe(onReport);
    const incoming = once(b, 'connection');
    const conn = await a.connect(b.peerId);
    const won = { path: conn.path, technique: REPORTED_TECHNIQUES.includes(conn.technique) ? conn.technique : 'other' };
    ((await incoming) as [Connection])[0].destroy();
    conn.destroy();
    // The initiator reports how the connection ended; the page shows it.
    await until(() => reports.length === 1, 'the initiator reported the connection', { seen: () => `${reports.length} reports` }).finally(() => reportChannel.unsubscribe(onReport));
    await assert.rejects(a.connect(generateIdentity().peerId));
    const echo = dgram.createSocket('udp4');
    sockets.push(echo);
    echo.bind(0, '127.0.0.3');
    await once(echo, 'listening');
    echo.on('message', (data, from) => echo.send(data, from.port, from.address));
    turn = new TurnClient(await openUdpTransport(server.stun.addresses[0]!));
    await turn.allocate({ username: 'alice', password: 'wonderland' });
    const echoAt = { family: 4 as const, address: '127.0.0.3', port: echo.address().port };
    await turn.bindChannel(echoAt);
    let echoed = 0;
    const relayed = new Promise<void>((resolve) => turn!.on('data', (_from, data: Uint8Array) => { if ((echoed += data.length) === 1500) resolve(); }));
    for (const size of [500, 1000]) turn.send(echoAt, Buffer.alloc(size, 7));
    await relayed;

    browser = await launchChromium(VIEWPORT, network, authorization);
    const page = await browser.context.newPage();
    const base = (isolated ? server.extraRendezvousUrls[0]! : server.rendezvousUrl!).replace('ws:', 'http:');
    const requested: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => { if (message.type() === 'error') problems.push(`console: ${message.text()}`); });
    const response = await page.goto(base, { timeout: 30_000 });
    assert.equal(response?.status(), 200);
    // Live: two polls at least, so rates (differences between polls) are shown too.
    await page.waitForSelector('body[data-updated]', { timeout: 30_000 });
    const first = await page.getAttribute('body', 'data-updated');
    await page.waitForFunction((before) => (globalThis as unknown as { document: PageDocument }).document.body.dataset['updated'] !== before, first, { timeout: 30_000 });
    assert.match(await page.textContent('#connect-rate') ?? '', /^\d+\.\d$/);
    assert.match(await page.textContent('#relay-bandwidth') ?? '', /\/s$/);

    // Read the page, scrape /metrics, read the page again: when no poll landed in between, both
    // show the same moment's registry.
    // Runs in the page (a function, not a string: the page's CSP forbids eval). This project
    // compiles without the DOM's types, so the little of them used here is spelt out.
    const read = (): Promise<Record<string, string>> => page.evaluate(() => {
      const doc = (globalThis as unknown as { document: PageDocument }).document;
      const out: Record<string, string> = { updated: doc.body.dataset['updated'] ?? '' };
      for (const el of doc.querySelectorAll('[data-value][id]')) out[el.id] = el.dataset['value'] ?? '';
      for (const tr of doc.querySelectorAll('#limits tr[data-limit]')) out[`limit:${tr.dataset['limit']}`] = tr.dataset['value'] ?? '';
      for (const tr of doc.querySelectorAll('#nat-pairs tr[data-pair]')) out[`pair:${tr.dataset['pair']}`] = [...tr.cells].slice(1, 3).map((c) => c.textContent).join('/');
      for (const tr of doc.querySelectorAll('#techniques tr[data-technique]')) out[`technique:${tr.dataset['technique']}`] = tr.cells[1]?.textContent ?? '';
      for (const tr of doc.querySelectorAll('#reported tr[data-technique]')) out[`reported:${tr.dataset['technique']} ${tr.dataset['path']}`] = tr.dataset['value'] ?? '';
      return out;
    });
    let shown: Record<string, string> | undefined;
    let metrics: ReturnType<typeof parsePrometheusText> | undefined;
    for (let attempt = 0; attempt < 5 && !shown; attempt++) {
      const before = await read();
      const scraped = parsePrometheusText(await (await fetch(`${base}metrics`, { headers: authorization })).text());
      const after = await read();
      if (before['updated'] === after['updated']) [shown, metrics] = [after, scraped];
    }
    assert.ok(shown && metrics, 'the page was re-rendered during each of five scrapes');
    const expected: Record<string, number | undefined> = {
      peers: sampleValue(metrics, 'natpunch_rendezvous_peers'),
      connections: sampleValue(metrics, 'natpunch_rendezvous_connections'),
      'connects-total': sumOf(metrics, 'natpunch_rendezvous_connects_total'),
      'connects-accepted': sumOf(metrics, 'natpunch_rendezvous_connects_total', { outcome: 'accepted' }),
      'connects-refused': sumOf(metrics, 'natpunch_rendezvous_connects_total', { outcome: 'refused' }),
      'connects-pending': sampleValue(metrics, 'natpunch_rendezvous_pending_connects'),
      'relay-allocations': sampleValue(metrics, 'natpunch_turn_allocations'),
      'relay-allocations-total': sampleValue(metrics, 'natpunch_turn_allocations_total'),
      'relay-bytes-to-peer': sampleValue(metrics, 'natpunch_turn_relayed_bytes_total', { direction: 'to-peer' }),
      'relay-bytes-to-client': sampleValue(metrics, 'natpunch_turn_relayed_bytes_total', { direction: 'to-client' }),
      'limit:relay-quota': sampleValue(metrics, 'natpunch_limits_hit_total', { limit: 'relay-quota' }),
      'reported-connected': sumOf(metrics, 'natpunch_rendezvous_reports_total', { role: 'initiator', outcome: 'connected' }),
      'reported-failed': sumOf(metrics, 'natpunch_rendezvous_reports_total', { role: 'initiator', outcome: 'failed' }),
      [`reported:${won.technique} ${won.path}`]: sumOf(metrics, 'natpunch_rendezvous_reports_total', { role: 'initiator', outcome: 'connected', ...won }),
    };
    for (const [id, value] of Object.entries(expected)) assert.equal(shown[id], String(value), `#${id}: the page shows ${shown[id]}, /metrics says ${value}`);
    // And they are what this test did.
    assert.equal(shown['peers'], '2');
    assert.equal(shown['connects-total'], '2');
    assert.equal(shown['connects-accepted'], '1');
    assert.equal(shown['relay-allocations'], '1');
    // At least this test's 1500 bytes: the peers' connection starts on the relay too (decision 006).
    assert.ok(Number(shown['relay-bytes-to-peer']) >= 1500 && Number(shown['relay-bytes-to-client']) >= 1500);
    assert.equal(shown['pair:open → open'], '1/1', 'one connect between two "open" peers, accepted');
    assert.equal(shown['technique:hole-punch'], '1');
    assert.equal(await page.textContent('#success-rate'), '50%');
    assert.deepEqual([shown['reported-connected'], shown['reported-failed'], shown[`reported:${won.technique} ${won.path}`]], ['1', '0', '1'],
      'the initiator reported its one connection, with the path and technique it ended on');
    assert.equal(await page.textContent('#reported-rate'), '100%');

    const elements = ['#peers', '#connect-rate', '#success-rate', '#nat-pairs', '#techniques', '#reported', '#relay-share', '#relay-bandwidth', '#limits'];
    for (const selector of elements) assert.ok(await page.isVisible(selector), `${selector} is visible`);
    assert.deepEqual(problems, [], 'no script errors, no CSP violations, no failed request (not even a favicon)');
    const origin = new URL(base).origin;
    assert.deepEqual(requested.filter((url) => !url.startsWith(`${origin}/`)), [], 'the page asked for nothing but its own server');

    const file = join(shots, 'dashboard.png');
    await page.screenshot({ path: file });
    const png = decodePng(await readFile(file));
    assert.deepEqual(png, VIEWPORT, 'the screenshot is the page at the window\'s size');
    if (process.env['NATPUNCH_KEEP_SCREENSHOT']) console.log(`dashboard screenshot: ${file}`);
  } finally {
    await browser?.close();
    await turn?.close();
    for (const socket of sockets) socket.close();
    for (const peer of peers) await peer.close();
    await server.close();
    await network.close();
    if (!process.env['NATPUNCH_KEEP_SCREENSHOT']) await rm(shots, { recursive: true, force: true });
  }
});
