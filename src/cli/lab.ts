import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NatpunchError, UsageError } from '../errors.js';
import { createLab, destroyPrefix, isNatKind, labSupport, NAT_KINDS, type LabDescription, type NatKind, type RouterOptions } from '../lab/index.js';
import { LAB_RUN_DIR } from '../lab/miniupnpd.js';
import { listNamespaces } from '../lab/netns.js';
import { validatePrefix } from '../lab/topology.js';
import { matrixPairs, runMatrix } from '../lab/matrix.js';
import { formatGrid, formatHtml, pairLine } from '../lab/matrix-report.js';
import { closestName, integer, usageErrors } from './args.js';

export const labUsage = `natpunch lab up --a KIND [--b KIND] [--hairpin] [--carrier KIND] [--b-carrier KIND] [--clients 1|2]
                [--loss PERCENT] [--udp-timeout SECONDS] [--tcp-unsolicited drop|rst] [--ipv6] [--prefix P] [--json]
                --ipv6: dual-stack, IPv6 from 2001:db8::/32 routed behind each router's stateful firewall (RFC 6092)
natpunch lab status [--prefix P] [--json]
natpunch lab exec HOST [--prefix P] -- COMMAND [ARG...]     HOST: server, a1, a2, b1, b2, a, b, carrier-a, carrier-b, inet
natpunch lab down [--prefix P | --all]
natpunch lab matrix [--kinds KIND,KIND,...] [--transport auto|udp|tcp|relay] [--bytes N] [--html FILE] [--json]
                every unordered pair of the kinds (default all nine: 45 pairs, ~5 s each): path, technique, time
KIND: ${NAT_KINDS.join(', ')}`;

/** The prefix `natpunch lab` uses when none is given (tests use pid-based ones, so no clash). */
const DEFAULT_PREFIX = 'lab';

interface LabState extends LabDescription {
  createdAt: string;
}

const say = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

function statePath(prefix: string): string {
  return join(LAB_RUN_DIR, `lab-${prefix}.json`);
}

function savedPrefixes(): string[] {
  try {
    return readdirSync(LAB_RUN_DIR)
      .map((name) => /^lab-(.+)\.json$/.exec(name)?.[1])
      .filter((p): p is string => p !== undefined);
  } catch {
    return [];
  }
}

function readState(prefix: string): LabState | null {
  try {
    return JSON.parse(readFileSync(statePath(prefix), 'utf8')) as LabState;
  } catch {
    return null;
  }
}

/** The lab a command means: --prefix, else the only one that is up. */
function chooseState(command: string, prefix: string | undefined): LabState {
  if (prefix !== undefined) {
    const state = readState(prefix);
    if (state === null) throw new UsageError(`natpunch lab ${command}: no lab with prefix ${JSON.stringify(prefix)} is up (no ${statePath(prefix)}); start one with: natpunch lab up --a KIND --prefix ${prefix}`);
    return state;
  }
  const prefixes = savedPrefixes();
  if (prefixes.length === 0) throw new UsageError(`natpunch lab ${command}: no lab is up; start one with: natpunch lab up --a port-restricted --b full-cone`);
  if (prefixes.length > 1) throw new UsageError(`natpunch lab ${command}: several labs are up (${prefixes.join(', ')}); choose one with --prefix P`);
  const state = readState(prefixes[0]!);
  if (state === null) throw new UsageError(`natpunch lab ${command}: ${statePath(prefixes[0]!)} is unreadable; remove the lab with: natpunch lab down --prefix ${prefixes[0]}`);
  return state;
}

function kind(command: string, flag: string, value: string | undefined): NatKind | undefined {
  if (value === undefined) return undefined;
  if (!isNatKind(value)) throw new UsageError(`natpunch lab ${command}: --${flag} ${JSON.stringify(value)} is not a NAT kind; use one of ${NAT_KINDS.join(', ')}`);
  return value;
}

async function up(argv: string[]): Promise<number> {
  const { values } = usageErrors('lab up', () =>
    parseArgs({
      args: argv,
      strict: true,
      options: {
        a: { type: 'string' },
        b: { type: 'string' },
        hairpin: { type: 'boolean', default: false },
        carrier: { type: 'string' },
        'b-carrier': { type: 'string' },
        clients: { type: 'string' },
        loss: { type: 'string' },
        'udp-timeout': { type: 'string' },
        'tcp-unsolicited': { type: 'string' },
        ipv6: { type: 'boolean', default: false },
        prefix: { type: 'string', default: DEFAULT_PREFIX },
        json: { type: 'boolean', default: false },
      },
    }),
  );
  const kindA = kind('up', 'a', values.a);
  if (kindA === undefined) throw new UsageError(`natpunch lab up: --a KIND is required (the NAT in front of host a1).\nusage: ${labUsage}`);
  const kindB = kind('up', 'b', values.b);
  const tcpUnsolicited = values['tcp-unsolicited'];
  if (tcpUnsolicited !== undefined && tcpUnsolicited !== 'drop' && tcpUnsolicited !== 'rst') {
    throw new UsageError(`natpunch lab up: --tcp-unsolicited ${JSON.stringify(tcpUnsolicited)} must be drop or rst`);
  }
  const shared: Omit<RouterOptions, 'kind'> = {
    hairpin: values.hairpin,
    clients: integer('lab up', 'clients', values.clients, 1, 1, 2) as 1 | 2,
    lossPercent: integer('lab up', 'loss', values.loss, 0, 0, 100),
    ...(values['udp-timeout'] !== undefined ? { udpTimeoutSeconds: integer('lab up', 'udp-timeout', values['udp-timeout'], 30, 1, 86_400) } : {}),
    ...(tcpUnsolicited !== undefined ? { tcpUnsolicited } : {}),
  };
  const carrierA = kind('up', 'carrier', values.carrier);
  const carrierB = kind('up', 'b-carrier', values['b-carrier']);
  if (carrierB !== undefined && kindB === undefined) throw new UsageError('natpunch lab up: --b-carrier needs --b KIND (a router b to put behind it)');
  const prefix = values.prefix;
  try {
    validatePrefix(prefix);
  } catch (error) {
    throw new UsageError(`natpunch lab up: --prefix: ${(error as Error).message.replace(/^lab: /, '')}`);
  }
  if (readState(prefix) !== null || listNamespaces().some((n) => n.startsWith(`${prefix}-`))) {
    throw new UsageError(`natpunch lab up: a lab with prefix ${JSON.stringify(prefix)} is already up; run natpunch lab down --prefix ${prefix} first, or choose another --prefix`);
  }

  const started = Date.now();
  const lab = await createLab({
    prefix,
    persistent: true,
    ipv6: values.ipv6,
    a: { kind: kindA, ...shared, ...(carrierA ? { carrier: carrierA } : {}) },
    ...(kindB ? { b: { kind: kindB, ...shared, ...(carrierB ? { carrier: carrierB } : {}) } } : {}),
  });
  const state: LabState = { ...lab.describe(), createdAt: new Date().toISOString() };
  mkdirSync(LAB_RUN_DIR, { recursive: true });
  writeFileSync(statePath(prefix), `${JSON.stringify(state, null, 2)}\n`);
  if (values.json) {
    say(JSON.stringify(state));
    return 0;
  }
  say(`natpunch lab: ${JSON.stringify(prefix)} is up (built in ${Date.now() - started} ms)`);
  printLab(state);
  const first = Object.keys(state.hosts)[0] ?? 'a1';
  say();
  say('use it:');
  say(`  natpunch lab exec server -- natpunch serve --address 198.51.100.10 --alt-address 198.51.100.11${state.server.addresses6?.length ? ` --address ${state.server.addresses6[0]}` : ''}`);
  say(`  natpunch lab exec ${first} -- natpunch check --stun 198.51.100.10`);
  say(`  natpunch lab exec ${first} -- ip -brief address       (or a shell: ip netns exec ${state.hosts[first]?.netns ?? ''} bash)`);
  say(`  natpunch lab status${prefix === DEFAULT_PREFIX ? '' : ` --prefix ${prefix}`}`);
  say(`  natpunch lab down${prefix === DEFAULT_PREFIX ? '' : ` --prefix ${prefix}`}`);
  return 0;
}

function printLab(state: LabDescription): void {
  const row = (name: string, what: string, netns: string, extras = ''): void => say(`  ${name.padEnd(16)} ${what.padEnd(56)} netns ${netns}${extras}`);
  row('server', [...state.server.addresses, ...(state.server.addresses6 ?? [])].join(', '), state.server.netns);
  for (const [name, r] of Object.entries(state.routers)) {
    const extras = [r.hairpin ? 'hairpin' : '', r.lossPercent > 0 ? `loss ${r.lossPercent}%` : '', r.tcpUnsolicited === 'rst' ? 'TCP RST' : '', r.udpTimeoutSeconds !== null ? `UDP timeout ${r.udpTimeoutSeconds}s` : '']
      .filter((e) => e !== '')
      .join(', ');
    row(`router ${name}`, `${r.kind}, public ${r.wanAddress}, LAN ${r.lanNetwork}`, r.netns, extras ? `  (${extras})` : '');
  }
  for (const [name, h] of Object.entries(state.hosts)) row(`host ${name}`, `${[...h.addresses, ...(h.addresses6 ?? [])].join(', ')} behind router ${h.router}`, h.netns);
  row('internet', 'core router 203.0.113.1, 198.51.100.1', state.internet.netns);
}

async function status(argv: string[]): Promise<number> {
  const { values } = usageErrors('lab status', () =>
    parseArgs({ args: argv, strict: true, options: { prefix: { type: 'string' }, json: { type: 'boolean', default: false } } }),
  );
  const state = chooseState('status', values.prefix);
  const present = new Set(listNamespaces());
  const expected = [state.internet.netns, state.server.netns, ...Object.values(state.routers).map((r) => r.netns), ...Object.values(state.hosts).map((h) => h.netns)];
  const missing = expected.filter((n) => !present.has(n));
  const conntrack: Record<string, number | null> = {};
  for (const [name, router] of Object.entries(state.routers)) conntrack[name] = present.has(router.netns) ? await conntrackCount(router.netns) : null;
  if (values.json) {
    say(JSON.stringify({ ...state, up: missing.length === 0, missingNamespaces: missing, conntrackEntries: conntrack }));
    return missing.length === 0 ? 0 : 1;
  }
  say(`natpunch lab: ${JSON.stringify(state.prefix)}, up since ${state.createdAt}`);
  printLab(state);
  say();
  for (const [name, count] of Object.entries(conntrack)) say(`  router ${name}: ${count === null ? 'namespace missing' : `${count} conntrack entries`}`);
  if (missing.length > 0) {
    say(`  missing namespaces: ${missing.join(', ')}; tear down with: natpunch lab down --prefix ${state.prefix}`);
    return 1;
  }
  return 0;
}

async function conntrackCount(netns: string): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', netns, 'conntrack', '-C'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.once('error', () => resolve(null));
    child.once('close', (code) => resolve(code === 0 && /^\d+/.test(out.trim()) ? Number.parseInt(out.trim(), 10) : null));
  });
}

function namespaceOf(state: LabDescription, name: string): string | undefined {
  if (name === 'server') return state.server.netns;
  if (name === 'inet' || name === 'internet') return state.internet.netns;
  return state.hosts[name]?.netns ?? state.routers[name]?.netns;
}

async function exec(argv: string[]): Promise<number> {
  const split = argv.indexOf('--');
  if (split < 0) throw new UsageError(`natpunch lab exec: put the command after --, e.g. natpunch lab exec a1 -- ip -brief address\nusage: ${labUsage}`);
  const command = argv.slice(split + 1);
  const { values, positionals } = usageErrors('lab exec', () =>
    parseArgs({ args: argv.slice(0, split), strict: true, allowPositionals: true, options: { prefix: { type: 'string' } } }),
  );
  if (positionals.length !== 1) throw new UsageError(`natpunch lab exec: expected exactly one HOST before --, got ${positionals.length}\nusage: ${labUsage}`);
  if (command.length === 0) throw new UsageError('natpunch lab exec: no command after --; e.g. natpunch lab exec a1 -- ip address');
  const state = chooseState('exec', values.prefix);
  const host = positionals[0]!;
  const netns = namespaceOf(state, host);
  if (netns === undefined) {
    const names = ['server', ...Object.keys(state.hosts), ...Object.keys(state.routers), 'inet'];
    throw new UsageError(`natpunch lab exec: lab ${JSON.stringify(state.prefix)} has no host ${JSON.stringify(host)}; choose one of ${names.join(', ')}`);
  }
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', netns, ...command], { stdio: 'inherit' });
    child.once('error', (error) => {
      process.stderr.write(`natpunch lab exec: could not start ip netns exec: ${error.message}\n`);
      resolve(1);
    });
    child.once('exit', (code, signal) => {
      resolve(code ?? 128 + (signal !== null ? (osConstants.signals[signal] ?? 0) : 0));
    });
  });
}

const TRANSPORTS = ['auto', 'udp', 'tcp', 'relay'] as const;

async function matrix(argv: string[]): Promise<number> {
  const { values } = usageErrors('lab matrix', () =>
    parseArgs({
      args: argv, strict: true, options: {
        kinds: { type: 'string' }, transport: { type: 'string', default: 'auto' }, bytes: { type: 'string' }, html: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    }),
  );
  const kinds = values.kinds === undefined ? [...NAT_KINDS] : values.kinds.split(',').map((k) => k.trim()).filter((k) => k !== '');
  const unknown = kinds.filter((k) => !isNatKind(k));
  if (unknown.length > 0 || kinds.length === 0) {
    throw new UsageError(`natpunch lab matrix: --kinds ${JSON.stringify(values.kinds)}: ${unknown.length ? `unknown kind ${unknown.map((k) => JSON.stringify(k)).join(', ')}` : 'no kinds'}; choose among ${NAT_KINDS.join(', ')}`);
  }
  const transport = values.transport as (typeof TRANSPORTS)[number];
  if (!TRANSPORTS.includes(transport)) throw new UsageError(`natpunch lab matrix: --transport ${JSON.stringify(values.transport)}: expected one of ${TRANSPORTS.join(', ')}`);
  const bytes = integer('lab matrix', 'bytes', values.bytes, 64 * 1024, 0, 64 << 20);
  const natKinds = [...new Set(kinds)] as NatKind[];
  const controller = new AbortController();
  const stop = (): void => controller.abort(new Error('interrupted'));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const total = matrixPairs(natKinds).length;
  if (!values.json) say(`natpunch lab matrix: ${total} pair${total === 1 ? '' : 's'} of ${natKinds.join(', ')}, --transport ${transport}; each pair gets a lab of its own (Ctrl-C stops after the current one)`);
  const date = new Date().toISOString();
  try {
    const results = await runMatrix({
      kinds: natKinds, transport, bytes, signal: controller.signal,
      onResult: (result, index) => {
        if (values.json) say(JSON.stringify({ event: 'pair', ...result }));
        else say(`[${String(index).padStart(2)}/${total}] ${pairLine(result)}`);
      },
    });
    if (values.html !== undefined) writeFileSync(values.html, formatHtml(natKinds, results, { transport, date }));
    const failed = results.filter((r) => !r.ok).length;
    if (values.json) say(JSON.stringify({ event: 'matrix', pairs: results.length, failed, ...(values.html !== undefined ? { html: values.html } : {}) }));
    else {
      say();
      say(formatGrid(natKinds, results));
      if (values.html !== undefined) say(`HTML: ${values.html}`);
      if (results.length < total) say(`stopped after ${results.length} of ${total} pairs`);
    }
    return failed > 0 || results.length < total ? 1 : 0;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

async function down(argv: string[]): Promise<number> {
  const { values } = usageErrors('lab down', () =>
    parseArgs({ args: argv, strict: true, options: { prefix: { type: 'string' }, all: { type: 'boolean', default: false } } }),
  );
  let prefixes: string[];
  if (values.all) prefixes = savedPrefixes();
  else if (values.prefix !== undefined) prefixes = [values.prefix];
  else prefixes = [chooseState('down', undefined).prefix];
  for (const prefix of prefixes) {
    await destroyPrefix(prefix);
    rmSync(statePath(prefix), { force: true });
    say(`natpunch lab: ${JSON.stringify(prefix)} is down`);
  }
  if (prefixes.length === 0) say('natpunch lab: no lab was up');
  return 0;
}

/** `natpunch lab up|down|status|exec`: returns the exit code (0 ok, 1 failure, 2 usage error). */
export async function labCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    switch (sub) {
      case 'up':
      case 'status':
      case 'exec':
      case 'matrix':
      case 'down': {
        // `natpunch lab matrix --help`: the usage, root or not (exec's own arguments, after --, are the command's).
        const own = sub === 'exec' && rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
        if (own.includes('--help') || own.includes('-h')) {
          process.stdout.write(`usage:\n${labUsage}\n`);
          return 0;
        }
        const support = labSupport();
        if (!support.ok) {
          process.stderr.write(`natpunch lab ${sub}: ${support.reason}\n`);
          return 1;
        }
        if (sub === 'up') return await up(rest);
        if (sub === 'status') return await status(rest);
        if (sub === 'exec') return await exec(rest);
        if (sub === 'matrix') return await matrix(rest);
        return await down(rest);
      }
      case undefined:
      case 'help':
      case '--help':
        process.stdout.write(`usage:\n${labUsage}\n`);
        return sub === undefined ? 2 : 0;
      default: {
        const meant = closestName(sub, ['up', 'status', 'exec', 'matrix', 'down']);
        throw new UsageError(`natpunch lab: unknown subcommand ${JSON.stringify(sub)}${meant ? ` (did you mean ${meant}?)` : ''}; use up, status, exec, matrix or down.\nusage:\n${labUsage}`);
      }
    }
  } catch (error) {
    if (!NatpunchError.is(error)) throw error;
    process.stderr.write(`${error.message}\n`);
    return error.code === 'ERR_USAGE' ? 2 : 1;
  }
}
