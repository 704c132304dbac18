import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { natpunch, runCli, waitForLine } from '../support/cli.js';
import { stopProcess } from '../support/process.js';
import { parsePrometheusText } from '../support/prometheus-text.js';

test('serve --metrics-token too short or with spaces is a usage error that says how to make one', async () => {
  for (const token of ['short', 'sixteen chars ok?']) {
    const result = await runCli('serve', '--address', '127.0.0.1', '--metrics-token', token);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /--metrics-token must be at least 16 characters without spaces.*openssl rand -hex 16/);
  }
});

test('serve --metrics-token: /metrics from loopback without a token, and with the token, is Prometheus text', { timeout: 60_000 }, async () => {
  const token = '0123456789abcdef0123';
  const [node, ...rest] = natpunch('serve', '--address', '127.0.0.1', '--port', '0', '--http-port', '0', '--no-relay', '--metrics-token', token);
  const serve = spawn(node!, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const ready = await waitForLine(serve, /ready/);
    const base = /rendezvous ws:\/\/(127\.0\.0\.1:\d+)\//.exec(ready)?.[1];
    assert.ok(base, `the ready line names the rendezvous: ${ready}`);
    for (const headers of [{}, { authorization: `Bearer ${token}` }] as Record<string, string>[]) {
      const response = await fetch(`http://${base}/metrics`, { headers });
      assert.equal(response.status, 200);
      assert.ok(parsePrometheusText(await response.text()).has('natpunch_stun_requests_total'));
    }
  } finally {
    await stopProcess(serve);
  }
});
