/**
 * The client side of a forwarding test, as its own process (so it can run inside a lab host):
 * DOWNLOADS parallel GETs of /file through the forwarded port, each hashed, and beside them a
 * loop of small request/response round trips (GET /echo) on one kept-alive TCP connection, the
 * interactive session, until the downloads are done. Prints one JSON line:
 * {"sha256":[...], "bytes":[...], "bulkMs":N, "roundTrips":[ms,...], "duringBulk":N}
 *
 *   node forward-client.js PORT DOWNLOADS
 */
import { createHash } from 'node:crypto';
import { Agent, get } from 'node:http';

const port = Number(process.argv[2]);
const downloads = Number(process.argv[3]);

function request(path: string, agent: Agent): Promise<{ sha256: string; bytes: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path, agent }, (response) => {
      if (response.statusCode !== 200) return reject(new Error(`GET ${path}: status ${response.statusCode}`));
      const hash = createHash('sha256');
      let bytes = 0;
      let body = '';
      response.on('data', (chunk: Buffer) => { hash.update(chunk); bytes += chunk.length; if (body.length < 64) body += chunk.toString(); });
      response.on('end', () => resolve({ sha256: hash.digest('hex'), bytes, body }));
      response.on('error', reject);
    });
    req.on('error', reject);
  });
}

const started = performance.now();
let bulkDone = false;
const bulk = Promise.all(Array.from({ length: downloads }, () => request('/file', new Agent({ keepAlive: false }))))
  .finally(() => { bulkDone = true; });
// The interactive session: one TCP connection (one stream), one request at a time.
const interactive = new Agent({ keepAlive: true, maxSockets: 1 });
const roundTrips: number[] = [];
let duringBulk = 0;
let n = 0;
while (!bulkDone) {
  const t0 = performance.now();
  const { body } = await request(`/echo?${++n}`, interactive);
  if (body !== String(n)) throw new Error(`echo ${n} answered ${body}`);
  roundTrips.push(Math.round(performance.now() - t0));
  if (!bulkDone) duringBulk++;
}
const results = await bulk;
const bulkMs = Math.round(performance.now() - started);
interactive.destroy();
process.stdout.write(JSON.stringify({ sha256: results.map((r) => r.sha256), bytes: results.map((r) => r.bytes), bulkMs, roundTrips, duringBulk }) + '\n');
