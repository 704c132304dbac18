import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { usageErrors } from './args.js';
import { withLab, labSupport, isNatKind, type NatKind, type Lab } from '../lab/index.js';
import { UsageError } from '../errors.js';
import { waitForLine } from './wait-for-line.js';

export const demoUsage = 'natpunch demo [--a KIND] [--b KIND]';
const CLI = fileURLToPath(new URL('./main.js', import.meta.url));

/**
 * README's main job: a lab with two different real NATs, `natpunch serve` in the server host,
 * and a peer behind each NAT. Without root it runs the same programs over loopback and says why.
 */
export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = usageErrors('demo', () => parseArgs({ args: argv, strict: true, options: {
    a: { type: 'string', default: 'port-restricted' },
    b: { type: 'string', default: 'full-cone' },
  } }));
  for (const k of [values.a, values.b]) if (!isNatKind(k)) throw new UsageError(`natpunch demo: unknown NAT kind ${JSON.stringify(k)}`);
  const support = labSupport();
  if (!support.ok) return loopbackDemo(support.reason);
  return labDemo(values.a as NatKind, values.b as NatKind);
}

const say = (line = ''): void => { process.stdout.write(line + '\n'); };

async function labDemo(kindA: NatKind, kindB: NatKind): Promise<number> {
  const started = Date.now();
  say(`natpunch demo: building a lab — router a: ${kindA}, router b: ${kindB}`);
  return withLab({ a: { kind: kindA }, b: { kind: kindB } }, async (lab: Lab) => {
    const d = lab.describe();
    say(`  server   ${d.server.addresses.join(', ')}`);
    for (const [name, r] of Object.entries(d.routers)) say(`  router ${name} ${r.kind.padEnd(18)} public ${r.wanAddress}, LAN ${r.lanNetwork}`);
    for (const [name, h] of Object.entries(d.hosts)) say(`  host ${name}  ${h.addresses.join(', ')} behind router ${h.router}`);
    say(`  (built in ${Date.now() - started} ms)`);
    say();
    const serve = lab.server.spawn([process.execPath, CLI, 'serve', '--address', '198.51.100.10', '--alt-address', '198.51.100.11', '--no-relay']);
    await waitForLine(serve, /ready/);
    say('natpunch serve is up in the server host (STUN with RFC 5780 at 198.51.100.10 and .11)');
    for (const host of ['a1', 'b1']) {
      say();
      say(`--- natpunch check, run in ${host} (behind router ${host[0]}) ---`);
      const result = await lab.hosts[host]!.exec([process.execPath, CLI, 'check', '--stun', '198.51.100.10']);
      say(result.stdout.trimEnd());
      if (result.code !== 0) say(result.stderr);
    }
    say();
    say(`natpunch demo: done in ${((Date.now() - started) / 1000).toFixed(1)} s; the lab is gone again.`);
    return 0;
  });
}

async function loopbackDemo(reason: string): Promise<number> {
  say(`natpunch demo: cannot build the NAT lab here (${reason}).`);
  say('Running the same programs over loopback instead: no NAT in the way, so expect "open internet".');
  say('Run as root on Linux (with nftables) to see real NATs.');
  say();
  const serve = spawn(process.execPath, [CLI, 'serve', '--address', '127.0.0.1', '--alt-address', '127.0.0.2', '--port', '0', '--alt-port', '0', '--no-relay'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const line = await waitForLine(serve, /ready/);
    const port = /127\.0\.0\.1:(\d+)/.exec(line)?.[1];
    const check = spawn(process.execPath, [CLI, 'check', '--stun', `127.0.0.1:${port}`], { stdio: ['ignore', 'inherit', 'inherit'] });
    const [code] = await new Promise<[number | null]>((resolve) => check.once('exit', (c) => resolve([c])));
    return code ?? 1;
  } finally {
    serve.kill('SIGTERM');
  }
}
