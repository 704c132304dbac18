/**
 * coturn 4.6.1 as a real peer: its STUN clients (turnutils_stunclient, turnutils_natdiscovery)
 * against natpunch's server, and its server (turnserver) against natpunch's client. Helpers to
 * run them inside lab hosts and to parse what they print.
 *
 * Output shapes below were read from coturn 4.6.1 (Debian) run against `natpunch serve`, on
 * loopback and behind every lab NAT kind; each line carries a log prefix ("0: : IPv4. ") that the
 * parsers skip.
 */

import { createSocket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EndpointDependence } from '../../src/lab/index.js';
import { ProcessOutput, localHost, stopProcess, type Spawner } from './process.js';
import { ENDPOINT_PATTERN as ENDPOINT } from './serve.js';

/** One "RFC 5780 response N" block as coturn's clients print it. */
export interface Rfc5780Response {
  /** RESPONSE-ORIGIN, where the server says it sent from. */
  responseOrigin: string | null;
  /** OTHER-ADDRESS, the server's alternate address and port. */
  otherAddress: string | null;
  /** XOR-MAPPED-ADDRESS, the client's server-reflexive transport address. */
  reflexive: string | null;
  /** The client's own socket (natdiscovery only). */
  local: string | null;
  /** natdiscovery prints whether MAPPED-ADDRESS was present and equal to XOR-MAPPED-ADDRESS. */
  mappedAddress: 'absent' | 'equal' | 'different' | null;
}

function field(block: string, label: string): string | null {
  return new RegExp(`${label}:[\\s:]*${ENDPOINT}`).exec(block)?.[1] ?? null;
}

/** Every "RFC 5780 response N" block in coturn client output, in order. */
export function parseRfc5780Responses(text: string): Rfc5780Response[] {
  return text.split(/^RFC 5780 response \d+$/m).slice(1).map((block) => {
    // A block ends where the next section or result banner starts.
    const body = block.split(/^={10,}$|^-= /m)[0]!;
    return {
      responseOrigin: field(body, 'Response origin'),
      otherAddress: field(body, 'Other addr'),
      reflexive: field(body, 'UDP reflexive addr'),
      local: field(body, 'Local addr'),
      mappedAddress: /Not received mapped address/.test(body) ? 'absent'
        : /No ALG: Mapped == XOR-Mapped/.test(body) ? 'equal'
          : /ALG detected/.test(body) ? 'different' : null,
    };
  });
}

/** What `turnutils_natdiscovery -m -f -H` concluded, in RFC 4787 words. */
export interface NatDiscoveryReport {
  /** false when it printed "No NAT!" (reflexive == local address), true when it ran the tests without; null if it did not get that far. */
  natted: boolean | null;
  mapping: EndpointDependence | null;
  filtering: EndpointDependence | null;
  /** true when the hairpinned request came back, false when both sockets timed out, null if -H did not run. */
  hairpin: boolean | null;
  responses: Rfc5780Response[];
}

const BEHAVIOUR: Record<string, EndpointDependence> = {
  'Endpoint Independent': 'endpoint-independent',
  'Address Dependent': 'address-dependent',
  'Address and Port Dependent': 'address-and-port-dependent',
};

function behaviour(section: string | undefined, what: 'Mapping' | 'Filtering'): EndpointDependence | null {
  if (section === undefined) return null;
  const phrase = new RegExp(`NAT with (.+?) ${what}!`).exec(section)?.[1];
  return phrase === undefined ? null : BEHAVIOUR[phrase] ?? null;
}

/** natdiscovery prints one "-= X Behavior Discovery =-" section per test it runs. */
function sections(text: string): Record<string, string> {
  const parts = text.split(/^-= (.+?) Behavior Discovery =-$/m);
  const out: Record<string, string> = {};
  for (let i = 1; i + 1 < parts.length; i += 2) out[parts[i]!] = parts[i + 1]!;
  return out;
}

export function parseNatDiscoveryOutput(text: string): NatDiscoveryReport {
  const s = sections(text);
  const mappingSection = s['Mapping'];
  const mapping = behaviour(mappingSection, 'Mapping');
  let natted: boolean | null = null;
  if (mappingSection !== undefined && /No NAT!/.test(mappingSection)) natted = false;
  else if (mapping !== null) natted = true;
  const hairpinSection = s['Hairpinning'];
  let hairpin: boolean | null = null;
  if (hairpinSection !== undefined) {
    if (/Received a request \(maybe a successful hairpinning\)/.test(hairpinSection)) hairpin = true;
    else if (/STUN receive timeout/.test(hairpinSection)) hairpin = false;
  }
  return { natted, mapping, filtering: behaviour(s['Filtering'], 'Filtering'), hairpin, responses: parseRfc5780Responses(text) };
}

/**
 * `turnutils_stunclient SERVER`. After its first Binding it sends a CHANGE-REQUEST with
 * RESPONSE-PORT = its local port + 1 and blocks in recv() with no time limit; behind a NAT that
 * answer has no mapping to come back through, so the tool never ends. `firstResponseOnly` stops
 * it once the first response is printed (stdout line-buffered through stdbuf, or the lines would
 * die in its stdio buffer); otherwise it must end by itself.
 */
export async function runStunclient(host: Spawner, server: string, options: { port?: number; firstResponseOnly: boolean; timeoutMs?: number }): Promise<Rfc5780Response[]> {
  const argv = ['stdbuf', '-oL', 'turnutils_stunclient', ...(options.port === undefined ? [] : ['-p', String(options.port)]), server];
  const output = new ProcessOutput(host.spawn(argv), 'turnutils_stunclient');
  try {
    if (options.firstResponseOnly) await output.waitFor([/UDP reflexive addr/], options.timeoutMs ?? 20_000);
    else await output.ended(options.timeoutMs ?? 20_000);
  } finally {
    await stopProcess(output.child);
  }
  return parseRfc5780Responses(output.text);
}

export interface Turnserver {
  output: ProcessOutput;
  /** The four RFC 5780 endpoints it listens on (both addresses × listening port and port + 1). */
  endpoints: string[];
  stop(): Promise<void>;
}

/**
 * Start coturn's `turnserver` as a plain STUN/TURN server on two addresses, which turns on its
 * RFC 5780 support (alternate port = listening port + 1 unless --alt-listening-port).
 * `-n`: no config file (Debian's disables RFC 5780). Its pid file and SQLite user database go to
 * a private directory, so nothing is shared with another run. Resolves once every UDP listener
 * is open, which -v makes it print.
 */
export async function startTurnserver(host: Spawner, addresses: readonly [string, string], port = 3478): Promise<Turnserver> {
  const dir = await mkdtemp(join(tmpdir(), 'natpunch-turnserver-'));
  const argv = [
    'turnserver', '-n', '-v', '--no-cli', '--no-tls', '--no-dtls',
    '-L', addresses[0], '-L', addresses[1], '-p', String(port),
    '--log-file', 'stdout', '--simple-log', '--pidfile', join(dir, 'turnserver.pid'), '--db', join(dir, 'turndb'),
  ];
  const output = new ProcessOutput(host.spawn(argv), 'turnserver');
  const endpoints = addresses.flatMap((address) => [`${address}:${port}`, `${address}:${port + 1}`]);
  const stop = async (): Promise<void> => {
    await stopProcess(output.child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await output.waitFor(endpoints.map((e) => new RegExp(`UDP listener opened on:\\s*${e.replace(/\./g, '\\.')}$`)));
  } catch (error) {
    await stop();
    throw error;
  }
  return { output, endpoints, stop };
}

/**
 * `turnutils_natdiscovery -m -f -H [-p PORT] -L LOCAL SERVER`, run to its end. `-L` binds its
 * sockets to the host's address, so "No NAT!" (reflexive == local) can show; without it the
 * local address is 0.0.0.0 and every host looks natted. Each test waits up to 3 s for an answer
 * that a filter drops, so a run takes up to ~15 s.
 */
export async function runNatDiscovery(host: Spawner, server: string, options: { local: string; port?: number; timeoutMs?: number }): Promise<NatDiscoveryReport & { text: string }> {
  const argv = ['turnutils_natdiscovery', '-m', '-f', '-H', '-L', options.local, ...(options.port === undefined ? [] : ['-p', String(options.port)]), server];
  const output = new ProcessOutput(host.spawn(argv), 'turnutils_natdiscovery');
  try {
    await output.ended(options.timeoutMs ?? 60_000);
  } finally {
    await stopProcess(output.child);
  }
  return { ...parseNatDiscoveryOutput(output.text), text: output.text };
}

export interface TurnRelay {
  /** The TURN server's UDP and TCP address (same port). */
  address: { family: 4; address: string; port: number };
  /** Where it listens for TLS, when started with a certificate. */
  tlsAddress?: { family: 4; address: string; port: number };
  output: ProcessOutput;
  stop(): Promise<void>;
}

/** A port free for both UDP and TCP on 127.0.0.1 right now (the OS picks it). */
async function freePort(): Promise<number> {
  for (;;) {
    const server = createServer();
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
    });
    const udp = createSocket('udp4');
    const udpFree = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (udpFree) {
      await new Promise<void>((resolve) => udp.close(() => resolve()));
      return port;
    }
  }
}

/**
 * coturn's `turnserver` as a TURN relay on 127.0.0.1 (UDP and TCP on one free port, relaying
 * on 127.0.0.1, loopback peers allowed), with the long-term credential mechanism for `users`
 * ("name:password") in realm natpunch.test, or `extra` options instead (e.g. the REST scheme).
 * With `at`, it runs in that host (a lab namespace) on that address and port instead, listening
 * and relaying there. Resolves once both listeners are open, which -v makes it print. The
 * caller stops it.
 */
export async function startTurnRelay(options: { users?: string[]; extra?: string[]; tls?: { cert: string; key: string }; at?: { host: Spawner; address: string; port: number } } = {}): Promise<TurnRelay> {
  const dir = await mkdtemp(join(tmpdir(), 'natpunch-turnrelay-'));
  const ip = options.at?.address ?? '127.0.0.1';
  const port = options.at?.port ?? await freePort();
  const tlsPort = options.tls ? await freePort() : undefined;
  let tlsArgs = ['--no-tls'];
  if (options.tls) {
    await writeFile(join(dir, 'cert.pem'), options.tls.cert);
    await writeFile(join(dir, 'key.pem'), options.tls.key);
    tlsArgs = [`--tls-listening-port=${tlsPort}`, '--cert', join(dir, 'cert.pem'), '--pkey', join(dir, 'key.pem')];
  }
  const argv = [
    'turnserver', '-n', '-v', '--no-cli', ...tlsArgs, '--no-dtls',
    `--listening-ip=${ip}`, `--relay-ip=${ip}`, `--listening-port=${port}`, '--allow-loopback-peers',
    '--realm=natpunch.test', ...(options.users ?? []).flatMap((user) => [`--user=${user}`]),
    ...(options.users?.length ? ['--lt-cred-mech'] : []), ...(options.extra ?? []),
    '--log-file=stdout', '--simple-log', '--pidfile', join(dir, 'turnserver.pid'), '--db', join(dir, 'turndb'),
  ];
  const output = new ProcessOutput((options.at?.host ?? localHost).spawn(argv), 'turnserver');
  const stop = async (): Promise<void> => {
    await stopProcess(output.child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const ipPattern = ip.replace(/\./g, '\\.');
    const at = `${ipPattern}:${port}$`;
    const patterns = [new RegExp(`UDP listener opened on:\\s*${at}`), new RegExp(`TCP listener opened on\\s*:\\s*${at}`)];
    if (tlsPort !== undefined) patterns.push(new RegExp(`TLS/TCP listener opened on\\s*:\\s*${ipPattern}:${tlsPort}$`));
    await output.waitFor(patterns);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    address: { family: 4, address: ip, port },
    ...(tlsPort === undefined ? {} : { tlsAddress: { family: 4 as const, address: ip, port: tlsPort } }),
    output,
    stop,
  };
}
