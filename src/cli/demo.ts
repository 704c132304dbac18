import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CommandSpec, parseCommand, usageLine } from './args.js';
import { withLab, labSupport, isNatKind, NAT_KINDS, type NatKind, type Lab } from '../lab/index.js';
import { UsageError } from '../errors.js';
import { waitForLine } from './wait-for-line.js';

export const demoSpec: CommandSpec = {
  name: 'demo',
  summary: 'Build a lab of two real Linux NATs (root), run natpunch serve and a peer behind each NAT, and connect them.\n'
    + 'Not root: the same programs over loopback, saying why.',
  flags: {
    a: { type: 'string', value: 'KIND', default: 'port-restricted', help: 'the NAT in front of the first peer (natpunch lab lists the kinds)', example: '--a symmetric-random' },
    b: { type: 'string', value: 'KIND', default: 'eim-random-port', help: 'the NAT in front of the second peer (the default pair needs hole punching: neither side can be reached first)', example: '--b port-restricted' },
  },
};

export const demoUsage = usageLine(demoSpec);
const CLI = fileURLToPath(new URL('./main.js', import.meta.url));

/**
 * README's main job: a lab with two different real NATs, `natpunch serve` in the server host,
 * and a peer behind each NAT. Without root it runs the same programs over loopback and says why.
 */
export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parseCommand(demoSpec, argv);
  for (const k of [values['a'], values['b']]) if (typeof k !== 'string' || !isNatKind(k)) throw new UsageError(`natpunch demo: unknown NAT kind ${JSON.stringify(k)}; choose one of ${NAT_KINDS.join(', ')}`);
  const support = labSupport();
  if (!support.ok) return loopbackDemo(support.reason);
  return labDemo(values['a'] as NatKind, values['b'] as NatKind);
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
    const serve = lab.server.spawn([process.execPath, CLI, 'serve', '--address', '198.51.100.10', '--alt-address', '198.51.100.11', '--http-port', '8080']);
    await waitForLine(serve, /ready/);
    say('natpunch serve is up in the server host: STUN (RFC 5780) and a TURN relay at 198.51.100.10 and .11, rendezvous ws://198.51.100.10:8080/');
    for (const host of ['a1', 'b1']) {
      const result = await lab.hosts[host]!.exec([process.execPath, CLI, 'check', '--stun', '198.51.100.10', '--json']);
      const r = JSON.parse(result.stdout || '{}') as Record<string, unknown>;
      say(`  natpunch check in ${host}: public ${r.mappedAddress}, ${r.rfc3489} (mapping ${r.mapping}, filtering ${r.filtering}, ports ${r.portAllocation})`);
    }
    say();
    const code = await peersDemo((argv) => lab.hosts.b1!.spawn(argv, { stdio: ['pipe', 'pipe', 'pipe'] }), (argv) => lab.hosts.a1!.spawn(argv, { stdio: ['pipe', 'pipe', 'pipe'] }), 'ws://198.51.100.10:8080/', 'b1', 'a1');
    say();
    say(`natpunch demo: done in ${((Date.now() - started) / 1000).toFixed(1)} s; the lab is gone again.`);
    return code;
  });
}

async function loopbackDemo(reason: string): Promise<number> {
  say(`natpunch demo: cannot build the NAT lab here (${reason}).`);
  say('Running the same programs over loopback instead: no NAT in the way, so expect "open internet" and a LAN path.');
  say('Run as root on Linux (with nftables) to see real NATs.');
  say();
  const serve = spawn(process.execPath, [CLI, 'serve', '--address', '127.0.0.1', '--alt-address', '127.0.0.2', '--port', '0', '--alt-port', '0', '--http-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const line = await waitForLine(serve, /ready/);
    const port = /127\.0\.0\.1:(\d+)/.exec(line)?.[1];
    const url = /rendezvous (ws:\/\/\S+)/.exec(line)?.[1] ?? '';
    const check = spawnSync(process.execPath, [CLI, 'check', '--stun', `127.0.0.1:${port}`], { encoding: 'utf8' });
    say(check.stdout.trimEnd());
    say();
    const run = (argv: string[]): ChildProcess => spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    // --bind 127.0.0.1: the peers offer and use loopback only, as this demo says, not this host's other addresses.
    return await peersDemo(run, run, url, 'peer 1', 'peer 2', ['--bind', '127.0.0.1']);
  } finally {
    serve.kill('SIGTERM');
  }
}

/**
 * `natpunch listen --once` on one side, `natpunch connect` on the other, a greeting each way
 * through their stdin/stdout, and their --json events told as a story.
 */
async function peersDemo(runListener: (argv: string[]) => ChildProcess, runConnector: (argv: string[]) => ChildProcess, url: string, listenerName: string, connectorName: string, extra: string[] = []): Promise<number> {
  const home = await mkdtemp(join(tmpdir(), 'natpunch-demo-'));
  try {
    const listener = runListener([process.execPath, CLI, 'listen', '--server', url, '--key', join(home, 'listener.key'), '--once', '--json', ...extra]);
    const ready = JSON.parse(await waitForLine(listener, /"event":"ready"/)) as { id: string };
    say(`${listenerName}: natpunch listen — registered as ${ready.id}`);
    listener.stdin!.end(`hello from ${listenerName}, behind its NAT\n`);
    const started = Date.now();
    say(`${connectorName}: natpunch connect ${ready.id.slice(0, 12)}…`);
    const connector = runConnector([process.execPath, CLI, 'connect', ready.id, '--server', url, '--key', join(home, 'connector.key'), '--json', ...extra]);
    connector.stdin!.end(`hello from ${connectorName}, behind another NAT\n`);
    const connectorCode = exitCode(connector).then((code) => {
      // A listener waits on after a failed attempt (--once counts connections, not attempts): stop it.
      if (code !== 0 && listener.exitCode === null) listener.kill('SIGTERM');
      return code;
    });
    const [lOut, cOut, lCode, cCode] = await Promise.all([collect(listener.stdout!), collect(connector.stdout!), exitCode(listener), connectorCode,
      waitForLine(connector, /"event":"(connected|error)"/).then((l) => tell(connectorName, l)).catch(() => undefined),
      waitForLine(listener, /"event":"(connected|error)"/).then((l) => tell(listenerName, l)).catch(() => undefined)]);
    if (lCode !== 0 || cCode !== 0) {
      say(`the peers did not connect (exit codes ${lCode}, ${cCode}); the errors above say why`);
      return 1;
    }
    say(`${connectorName} received: ${cOut.trim()}`);
    say(`${listenerName} received: ${lOut.trim()}`);
    say(`both directions ended cleanly in ${Date.now() - started} ms (exit codes ${lCode}, ${cCode})`);
    return 0;
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

function tell(who: string, line: string): void {
  const e = JSON.parse(line) as Record<string, unknown>;
  if (e.event === 'connected') say(`${who}: connected — path ${e.path}, technique ${e.technique}, remote ${e.remote}, ${e.ms} ms, Noise-encrypted end to end`);
  else say(`${who}: error ${e.code}: ${e.message}`);
}

async function collect(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
}

function exitCode(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => { if (child.exitCode !== null) resolve(child.exitCode); else child.once('exit', (code) => resolve(code)); });
}
