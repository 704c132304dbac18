/**
 * The service a forwarding test exposes, as its own process (so it can run inside a lab host):
 * node:http on 127.0.0.1, GET /file answers `bytes` random bytes, GET /echo?x answers x (the
 * interactive request/response). Prints {"port":N,"sha256":HEX} once listening; runs until killed.
 *
 *   node forward-service.js BYTES
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

const bytes = Number(process.argv[2]);
const file = randomBytes(bytes);
const server = createServer((request, response) => {
  const url = new URL(request.url ?? '/', 'http://service');
  if (url.pathname === '/file') {
    response.writeHead(200, { 'content-length': String(file.length), 'content-type': 'application/octet-stream' });
    response.end(file);
  } else if (url.pathname === '/echo') {
    const body = url.search.slice(1);
    response.writeHead(200, { 'content-length': String(body.length) });
    response.end(body);
  } else {
    response.writeHead(404).end();
  }
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  process.stdout.write(JSON.stringify({ port, sha256: createHash('sha256').update(file).digest('hex') }) + '\n');
});
