/**
 * The plain HTTP side of `natpunch serve` (WebSocket upgrades never reach it: they go to the
 * rendezvous). Routes:
 * - `GET /healthz`: 200 `ok` to anyone (load balancers, uptime checks); the JSON details
 *   (version, the servers' counters) only to those checkAccess lets in;
 * - `GET /metrics`: Prometheus text, `GET /`: the dashboard, `GET /dashboard.json`: its data,
 *   all three only to those checkAccess lets in (loopback, or the bearer token).
 */
import type http from 'node:http';
import { checkAccess } from '../../metrics/access.js';
import { dashboardData } from '../../metrics/dashboard-data.js';
import type { ServerMetrics } from '../../metrics/server-metrics.js';
import { dashboardPage } from './dashboard-page.js';

export interface HttpHandlerOptions {
  metrics: ServerMetrics;
  /** `--metrics-token`: a request with `Authorization: Bearer TOKEN` may read from anywhere. */
  token?: string | undefined;
  /** /healthz's details for those allowed to see them. */
  health: () => Record<string, unknown>;
}

const PRIVATE = ['/metrics', '/', '/dashboard.json'];

export function httpHandler(options: HttpHandlerOptions): (request: http.IncomingMessage, response: http.ServerResponse) => void {
  return (request, response) => {
    void route(options, request, response).catch((error: unknown) => {
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      response.end(`natpunch serve: ${request.url} failed: ${(error as Error)?.message}\n`);
    });
  };
}

async function route(options: HttpHandlerOptions, request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
  const path = pathOf(request.url);
  const known = path === '/healthz' || PRIVATE.includes(path);
  if (known && request.method !== 'GET' && request.method !== 'HEAD') {
    return send(response, 405, 'text/plain; charset=utf-8', `natpunch serve: ${path} answers GET only\n`, { allow: 'GET, HEAD' });
  }
  const access = checkAccess(request.socket.remoteAddress, request.headers.authorization, options.token);
  if (path === '/healthz') {
    // Anyone may learn that the server is up; only the allowed learn more.
    if (!access.allowed) return send(response, 200, 'text/plain; charset=utf-8', 'ok\n');
    return send(response, 200, 'application/json', JSON.stringify({ ok: true, ...options.health() }));
  }
  if (!known) {
    return send(response, 404, 'text/plain; charset=utf-8', 'natpunch: the rendezvous WebSocket is at /, health at /healthz, Prometheus metrics at /metrics, the dashboard at /\n');
  }
  if (!access.allowed) {
    return send(response, access.status, 'text/plain; charset=utf-8', `${access.message}\n`,
      access.status === 401 ? { 'www-authenticate': 'Bearer realm="natpunch"' } : {});
  }
  if (path === '/metrics') {
    const { contentType, text } = await options.metrics.exposition();
    return send(response, 200, contentType, text);
  }
  if (path === '/dashboard.json') return send(response, 200, 'application/json', JSON.stringify(await dashboardData(options.metrics.registry)));
  const page = dashboardPage();
  return send(response, 200, 'text/html; charset=utf-8', page.html, { 'content-security-policy': page.csp });
}

function send(response: http.ServerResponse, status: number, contentType: string, body: string, headers: Record<string, string> = {}): void {
  // Live numbers: never from a cache. nosniff: text stays text.
  response.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...headers });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}

function pathOf(url: string | undefined): string {
  try {
    return new URL(url ?? '/', 'http://localhost').pathname;
  } catch {
    return '';
  }
}
