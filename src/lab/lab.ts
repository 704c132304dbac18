/**
 * The real-NAT lab: Linux network namespaces joined by veth pairs and bridges, with NAT
 * behaviour made by nftables in each router namespace. Tests, the demo, benchmarks and
 * `natpunch lab` run real programs on its hosts and read the routers' conntrack tables and
 * counters to see what the kernel did.
 *
 * The shape and addresses are in topology.ts, the NAT rules in nat-ruleset.ts.
 */

import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { AbortedError, LabError } from '../errors.js';
import { parseConntrackList, type ConntrackEntry } from './conntrack.js';
import {
  DEFAULT_STUN_PORT,
  miniupnpdRuleset,
  stunRepliesRule,
  removeMiniupnpdFiles,
  superviseMiniupnpd,
  writeMiniupnpdConfig,
  type MiniupnpdHandle,
  type MiniupnpdOptions,
} from './miniupnpd.js';
import type { NatKind } from './nat-kind.js';
import {
  counterRule, FIREWALL6_TABLE, firewall6Ruleset, lossRuleset, lossTable, NAT_TABLE, natRuleset, ROUTER_COUNTERS, ROUTER_COUNTERS6, validateCounterName,
} from './nat-ruleset.js';
import {
  destroyPrefix,
  destroyStaleLabs,
  findExecutable,
  inNetns,
  mustRun,
  ProcessSet,
  registerForExitCleanup,
  releaseFromExitCleanup,
  type ExecOptions,
  type ExecResult,
  type SpawnOptions,
} from './netns.js';
import { planIpBatches, planLab, planNamespaces, validatePrefix, type HostPlan, type LabPlan, type RouterOptions, type RouterPlan } from './topology.js';

export type { ConntrackEntry, ConntrackTuple } from './conntrack.js';
export type { ExecOptions, ExecResult, SpawnOptions } from './netns.js';
export type { Ipv6Mode, RouterOptions } from './topology.js';
export { destroyPrefix, destroyStaleLabs } from './netns.js';

export interface LabOptions {
  /** Namespace-name prefix (a letter, then letters, digits, '_'). Default: unique per process and lab. */
  prefix?: string;
  a: RouterOptions;
  b?: RouterOptions;
  /**
   * Dual-stack (default false): besides IPv4, every link gets IPv6 from 2001:db8::/32 (RFC
   * 3849), the LANs are routed /64s, and each router filters IPv6 as RouterOptions.ipv6 says
   * (default: RFC 6092's stateful firewall). Without it IPv6 is disabled in every namespace.
   */
  ipv6?: boolean;
  /** Aborting stops a creation in progress (AbortedError) or tears a created lab down. */
  signal?: AbortSignal;
  /**
   * Leave the lab up when this process exits (for `natpunch lab up`). Default false: namespaces
   * are deleted on exit, SIGINT or SIGTERM even if `down()` was never called.
   */
  persistent?: boolean;
}

export interface Host {
  /** 'server' | 'a1' | 'a2' | 'b1' | 'b2' */
  readonly name: string;
  readonly netns: string;
  /** Its own interface addresses (the server has two public ones, for RFC 5780). */
  readonly addresses: string[];
  /** Its global IPv6 addresses (empty unless the lab has IPv6). */
  readonly addresses6: string[];
  /** Run to completion inside the namespace. */
  exec(argv: string[], options?: ExecOptions): Promise<ExecResult>;
  /** Start a long-running process inside the namespace; `lab.down()` kills its process group. */
  spawn(argv: string[], options?: SpawnOptions): ChildProcess;
}

export interface Router {
  /** 'a' | 'b' | 'carrier-a' | 'carrier-b' */
  readonly name: string;
  readonly netns: string;
  readonly kind: NatKind;
  /** Its address on the `wan` side (inside 100.64.0.0/10 when behind a carrier NAT). */
  readonly wanAddress: string;
  /** Its LAN, as a CIDR. */
  readonly lanNetwork: string;
  /** Its own address on the LAN: its clients' default gateway. */
  readonly lanAddress: string;
  /** Its IPv6 side (null unless the lab has IPv6): WAN address, LAN /64, own LAN address. */
  readonly ipv6: { readonly wanAddress: string; readonly lanNetwork: string; readonly lanAddress: string; readonly mode: 'firewall' | 'open' } | null;
  exec(argv: string[], options?: ExecOptions): Promise<ExecResult>;
  /** The router's connection-tracking table: every mapping the NAT holds. */
  conntrack(): Promise<ConntrackEntry[]>;
  /**
   * A named nft counter: 'wan-in', 'wan-out', 'unsolicited', 'lost', or one added with addCounter;
   * with IPv6, the firewall's 'wan-in6', 'wan-out6' and 'unsolicited6'.
   */
  counter(name: string): Promise<{ packets: number; bytes: number }>;
  /**
   * Count packets matching an nft expression as they leave through `wan` (after source NAT),
   * or, with direction 'in', as they arrive on `wan` (before any NAT).
   * Example: addCounter('to-x', 'ip daddr 203.0.113.7 udp dport 4000').
   */
  addCounter(name: string, match: string, direction?: 'out' | 'in'): Promise<void>;
  /** Start miniupnpd (UPnP IGD + NAT-PMP + PCP) on the LAN; it needs a STUN server (RFC 5780) at stunHost. */
  startMiniupnpd(options?: MiniupnpdOptions): Promise<MiniupnpdHandle>;
  /**
   * Forget mappings, as a NAT under pressure or a rebooting router does. 'conntrack': `conntrack
   * -F` only (the endpoint-independent mappings the lab keeps in nftables survive, so a peer
   * comes back on the same port); 'reboot': those too, so an EIM NAT that picks ports at random
   * gives the peer a new one.
   */
  forget(what: 'conntrack' | 'reboot'): Promise<void>;
  /** Drop (true) or pass again (false) every UDP packet the router forwards: a network that blocks UDP, from now on. */
  blockUdp(blocked: boolean): Promise<void>;
  /**
   * Drop (true) or pass again (false) every IPv4 packet the router forwards: a dual-stack network
   * whose IPv4 is broken (its IPv6 untouched), from now on.
   */
  blockIpv4(blocked: boolean): Promise<void>;
}

export interface Lab {
  readonly prefix: string;
  readonly server: Host;
  /** Clients by name: a1, a2, b1, b2 (only those that exist). */
  readonly hosts: Record<string, Host>;
  /** Routers by name: a, b, carrier-a, carrier-b (only those that exist). */
  readonly routers: Record<string, Router>;
  /** The core router namespace between the server and every router's WAN. */
  readonly internet: { netns: string };
  /**
   * Cuts (or restores) the core between two routers' WAN addresses, both ways, leaving their
   * traffic to the server alone: a direct path between peers behind them dies, a relay through
   * the server does not.
   */
  cut(a: string, b: string, cut: boolean): Promise<void>;
  /** What was built, for printing and for `natpunch lab status`. */
  describe(): LabDescription;
  /** Kill spawned processes and delete every namespace of this prefix. Idempotent. */
  down(): Promise<void>;
}

export interface LabDescription {
  prefix: string;
  internet: { netns: string };
  server: { netns: string; addresses: string[]; addresses6?: string[] };
  hosts: Record<string, { netns: string; addresses: string[]; addresses6?: string[]; router: string }>;
  routers: Record<string, { netns: string; kind: NatKind; wanAddress: string; lanNetwork: string; hairpin: boolean; lossPercent: number; tcpUnsolicited: 'drop' | 'rst'; udpTimeoutSeconds: number | null }>;
}

/** The table that stops forwarding while a router 'reboots' (Router.forget). */
const REBOOT_TABLE = 'natlab_reboot';
/** The table that blocks forwarded UDP (Router.blockUdp). */
const BLOCK_TABLE = 'natlab_block';
/** The table that blocks forwarded IPv4 (Router.blockIpv4). */
const BLOCK_IPV4_TABLE = 'natlab_block4';
/** The core's table that cuts two routers apart (Lab.cut). */
const CUT_TABLE = 'natlab_cut';
const REQUIRED_COMMANDS = ['ip', 'nft', 'conntrack', 'sysctl'] as const;
let supportCache: { ok: true } | { ok: false; reason: string } | undefined;
let labCounter = 0;

/**
 * Whether this machine can run the lab: root, the tools present, and a namespace with nftables
 * can be made. The answer is computed once per process.
 */
export function labSupport(): { ok: true } | { ok: false; reason: string } {
  supportCache ??= checkSupport();
  return supportCache;
}

function checkSupport(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: `the NAT lab needs Linux network namespaces; this is ${process.platform}` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'the NAT lab needs root (network namespaces and nftables); run as root' };
  const missing = REQUIRED_COMMANDS.filter((c) => findExecutable(c) === null);
  if (missing.length > 0) {
    return { ok: false, reason: `the NAT lab needs ${missing.join(', ')}; install with: apt-get install -y iproute2 nftables conntrack procps` };
  }
  // Named like a default lab prefix, so destroyStaleLabs removes it if this process dies here.
  const probe = `np${process.pid}n0-check`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'pipe' });
  } catch (error) {
    return { ok: false, reason: `cannot create a network namespace (ip netns add): ${stderrOf(error)}` };
  }
  try {
    execFileSync('ip', ['netns', 'exec', probe, 'nft', 'list', 'tables'], { stdio: 'pipe' });
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: `nftables does not work inside a network namespace: ${stderrOf(error)}` };
  } finally {
    try {
      execFileSync('ip', ['netns', 'delete', probe], { stdio: 'pipe' });
    } catch {
      // left for destroyStaleLabs
    }
  }
}

function stderrOf(error: unknown): string {
  const stderr = (error as { stderr?: Buffer }).stderr?.toString('utf8').trim();
  return stderr !== undefined && stderr !== '' ? stderr : error instanceof Error ? error.message : String(error);
}

class LabHost implements Host {
  readonly name: string;
  readonly netns: string;
  readonly addresses: string[];
  readonly addresses6: string[];
  protected readonly processes: ProcessSet;

  constructor(plan: { name: string; netns: string; addresses: readonly string[]; addresses6?: readonly string[] }, processes: ProcessSet) {
    this.name = plan.name;
    this.netns = plan.netns;
    this.addresses = [...plan.addresses];
    this.addresses6 = [...(plan.addresses6 ?? [])];
    this.processes = processes;
  }

  exec(argv: string[], options?: ExecOptions): Promise<ExecResult> {
    return this.processes.run(inNetns(this.netns, argv), options);
  }

  spawn(argv: string[], options?: SpawnOptions): ChildProcess {
    return this.processes.spawn(inNetns(this.netns, argv), options);
  }
}

class LabRouter extends LabHost implements Router {
  readonly kind: NatKind;
  readonly wanAddress: string;
  readonly lanNetwork: string;
  readonly lanAddress: string;
  readonly ipv6: Router['ipv6'];
  readonly #plan: RouterPlan;
  #miniupnpdPrepared = false;

  constructor(plan: RouterPlan, processes: ProcessSet) {
    super({
      name: plan.name, netns: plan.netns, addresses: [plan.wanAddress, plan.lanAddress], addresses6: plan.ipv6 ? [plan.ipv6.wanAddress, plan.ipv6.lanAddress] : [],
    }, processes);
    this.#plan = plan;
    this.ipv6 = plan.ipv6 && { wanAddress: plan.ipv6.wanAddress, lanNetwork: plan.ipv6.lanNetwork, lanAddress: plan.ipv6.lanAddress, mode: plan.options.ipv6 };
    this.kind = plan.kind;
    this.wanAddress = plan.wanAddress;
    this.lanNetwork = plan.lanNetwork;
    this.lanAddress = plan.lanAddress;
  }

  get #where(): string {
    return `lab router ${this.name}`;
  }

  async conntrack(): Promise<ConntrackEntry[]> {
    return parseConntrackList(await mustRun(this.processes, this.#where, inNetns(this.netns, ['conntrack', '-L'])));
  }

  async counter(name: string): Promise<{ packets: number; bytes: number }> {
    validateCounterName(name);
    const ipv6 = (Object.values(ROUTER_COUNTERS6) as string[]).includes(name);
    const [family, table] = name === ROUTER_COUNTERS.lost ? ['netdev', lossTable('wan')] : ipv6 ? ['ip6', FIREWALL6_TABLE] : ['ip', NAT_TABLE];
    const result = await this.exec(['nft', '-j', 'list', 'counter', family, table, name], { timeoutMs: 20_000 });
    if (result.code !== 0) {
      throw new LabError(`${this.#where}: no counter ${JSON.stringify(name)} in ${family} ${table} (declared: ${Object.values(ROUTER_COUNTERS).join(', ')}, or one added with addCounter): ${result.stderr.trim()}`);
    }
    const parsed = JSON.parse(result.stdout) as { nftables?: { counter?: { packets: number; bytes: number } }[] };
    const found = parsed.nftables?.find((item) => item.counter !== undefined)?.counter;
    if (found === undefined) throw new LabError(`${this.#where}: nft printed no counter object for ${JSON.stringify(name)}`);
    return { packets: found.packets, bytes: found.bytes };
  }

  async addCounter(name: string, match: string, direction: 'out' | 'in' = 'out'): Promise<void> {
    await mustRun(this.processes, `${this.#where} addCounter ${name}`, inNetns(this.netns, ['nft', '-f', '-']), { input: counterRule(name, match, direction) });
  }

  async forget(what: 'conntrack' | 'reboot'): Promise<void> {
    if (what === 'conntrack') {
      await mustRun(this.processes, `${this.#where} conntrack -F`, inNetns(this.netns, ['conntrack', '-F']));
      return;
    }
    // A reboot is a moment with no forwarding: without it, a packet of a live flow between the
    // flushes would re-learn the old mapping (the learn chain records every outbound packet) and
    // the next flow would reuse it. A packet dropped in forward never confirms its conntrack entry.
    const down = `table ip ${REBOOT_TABLE} {\n  chain forward { type filter hook forward priority -300; policy drop; }\n}\n`;
    const run = (what: string, argv: string[], input?: string): Promise<string> =>
      mustRun(this.processes, `${this.#where} reboot: ${what}`, inNetns(this.netns, argv), input === undefined ? undefined : { input });
    await run('stop forwarding', ['nft', '-f', '-'], down);
    try {
      await run('flush mappings', ['nft', '-f', '-'], ['map ext2int', 'map int2ext', 'set sentto'].map((m) => `flush ${m.replace(' ', ` ip ${NAT_TABLE} `)}`).join('\n') + '\n');
      await run('conntrack -F', ['conntrack', '-F']);
    } finally {
      await run('resume forwarding', ['nft', 'delete', 'table', 'ip', REBOOT_TABLE]);
    }
  }

  async blockUdp(blocked: boolean): Promise<void> {
    const ruleset = blocked
      ? `table ip ${BLOCK_TABLE} {\n  chain forward { type filter hook forward priority -300; policy accept; meta l4proto udp drop; }\n}\n`
      : `delete table ip ${BLOCK_TABLE}\n`;
    await mustRun(this.processes, `${this.#where} ${blocked ? 'block' : 'unblock'} UDP`, inNetns(this.netns, ['nft', '-f', '-']), { input: ruleset });
  }

  async blockIpv4(blocked: boolean): Promise<void> {
    // A table of family ip sees only IPv4: IPv6 forwarding goes on as before.
    const ruleset = blocked
      ? `table ip ${BLOCK_IPV4_TABLE} {\n  chain forward { type filter hook forward priority -300; policy drop; }\n}\n`
      : `delete table ip ${BLOCK_IPV4_TABLE}\n`;
    await mustRun(this.processes, `${this.#where} ${blocked ? 'block' : 'unblock'} IPv4`, inNetns(this.netns, ['nft', '-f', '-']), { input: ruleset });
  }

  /** Create miniupnpd's nftables chains; done at creation when RouterOptions.miniupnpd is set. */
  async prepareMiniupnpd(stunPort = DEFAULT_STUN_PORT): Promise<void> {
    if (this.#miniupnpdPrepared) return;
    await mustRun(this.processes, `${this.#where} miniupnpd tables`, inNetns(this.netns, ['nft', '-f', '-']), {
      input: miniupnpdRuleset() + stunRepliesRule(NAT_TABLE, stunPort),
    });
    this.#miniupnpdPrepared = true;
  }

  async startMiniupnpd(options: MiniupnpdOptions = {}): Promise<MiniupnpdHandle> {
    if (findExecutable('miniupnpd') === null) throw new LabError(`${this.#where}: miniupnpd is not installed (apt-get install -y miniupnpd-nftables)`);
    await this.prepareMiniupnpd(options.stunPort);
    const files = writeMiniupnpdConfig(this.netns, this.#plan, options);
    const child = this.spawn(['miniupnpd', '-d', '-f', files.config, '-P', files.pid]);
    let handle: MiniupnpdHandle;
    try {
      handle = await superviseMiniupnpd(child, this.#where);
    } catch (error) {
      removeMiniupnpdFiles(this.netns);
      throw error;
    }
    return {
      log: handle.log,
      stop: async () => {
        await handle.stop();
        removeMiniupnpdFiles(this.netns);
        // miniupnpd leaves its rules behind; an empty table set is the clean state.
        await mustRun(this.processes, `${this.#where} miniupnpd tables`, inNetns(this.netns, ['nft', '-f', '-']), { input: miniupnpdRuleset() });
      },
    };
  }
}

class RunningLab implements Lab {
  readonly prefix: string;
  readonly server: Host;
  readonly hosts: Record<string, Host> = {};
  readonly routers: Record<string, Router> = {};
  readonly internet: { netns: string };
  readonly #plan: LabPlan;
  readonly #processes: ProcessSet;
  #down: Promise<void> | undefined;
  /** Run once when the lab goes down (e.g. removing its listener from the caller's signal). */
  onDown: (() => void) | undefined;

  constructor(plan: LabPlan, processes: ProcessSet) {
    this.#plan = plan;
    this.#processes = processes;
    this.prefix = plan.prefix;
    this.internet = { netns: plan.inet.netns };
    this.server = new LabHost(plan.server, processes);
    for (const host of plan.hosts) this.hosts[host.name] = new LabHost(host, processes);
    for (const router of plan.routers) this.routers[router.name] = new LabRouter(router, processes);
  }

  describe(): LabDescription {
    return describePlan(this.#plan);
  }

  async cut(a: string, b: string, cut: boolean): Promise<void> {
    const [x, y] = [this.routers[a], this.routers[b]];
    if (!x || !y) throw new LabError(`lab ${this.prefix}: cut ${a} ${b}: no such router (there are ${Object.keys(this.routers).join(', ')})`);
    const table = `${CUT_TABLE}_${a}_${b}`.replace(/[^A-Za-z0-9_]/g, '_');
    const between = (family: 'ip' | 'ip6', p: string, q: string): string =>
      `table ${family} ${table} {\n  chain forward { type filter hook forward priority -300; policy accept;\n    ${family} saddr ${p} ${family} daddr ${q} drop\n    ${family} saddr ${q} ${family} daddr ${p} drop\n  }\n}\n`;
    // With IPv6, the routed LANs are cut apart as well: there is no NAT address to stand for them.
    const v6 = x.ipv6 && y.ipv6 ? [x.ipv6.lanNetwork, y.ipv6.lanNetwork] as const : undefined;
    const ruleset = cut
      ? between('ip', x.wanAddress, y.wanAddress) + (v6 ? between('ip6', v6[0], v6[1]) : '')
      : `delete table ip ${table}\n` + (v6 ? `delete table ip6 ${table}\n` : '');
    await mustRun(this.#processes, `lab ${this.prefix} core: ${cut ? 'cut' : 'restore'} ${a} <-> ${b}`, inNetns(this.internet.netns, ['nft', '-f', '-']), { input: ruleset });
  }

  down(): Promise<void> {
    this.#down ??= (async () => {
      this.onDown?.();
      await this.#processes.killAll();
      for (const router of this.#plan.routers) removeMiniupnpdFiles(router.netns);
      await destroyPrefix(this.prefix);
      releaseFromExitCleanup(this.prefix);
    })();
    return this.#down;
  }
}

/** Clients are named after their router: a1 and a2 sit behind router a. */
function routerOf(host: HostPlan): string {
  return host.name.replace(/\d+$/, '');
}

export function describePlan(plan: LabPlan): LabDescription {
  const hosts: LabDescription['hosts'] = {};
  for (const host of plan.hosts) {
    hosts[host.name] = { netns: host.netns, addresses: [...host.addresses], ...(plan.ipv6 ? { addresses6: [...host.addresses6] } : {}), router: routerOf(host) };
  }
  const routers: LabDescription['routers'] = {};
  for (const r of plan.routers) {
    routers[r.name] = {
      netns: r.netns,
      kind: r.kind,
      wanAddress: r.wanAddress,
      lanNetwork: r.lanNetwork,
      hairpin: r.options.hairpin,
      lossPercent: r.options.lossPercent,
      tcpUnsolicited: r.options.tcpUnsolicited,
      udpTimeoutSeconds: r.options.udpTimeoutSeconds,
    };
  }
  return {
    prefix: plan.prefix,
    internet: { netns: plan.inet.netns },
    server: { netns: plan.server.netns, addresses: [...plan.server.addresses], ...(plan.ipv6 ? { addresses6: [...plan.server.addresses6] } : {}) },
    hosts,
    routers,
  };
}

function defaultPrefix(): string {
  labCounter += 1;
  return `np${process.pid}n${labCounter}`;
}

/**
 * sysctl settings per namespace: forwarding only in routers; no IPv6 chatter anywhere, unless the
 * lab is dual-stack. Set before the links exist, so every interface inherits `default`.
 */
export function sysctlsFor(plan: LabPlan, netns: string): string[] {
  const routing = netns === plan.inet.netns || plan.routers.some((r) => r.netns === netns);
  const settings = plan.ipv6
    ? [
      // No duplicate address detection: an address is usable at once instead of 'tentative' for
      // about a second (binding to a tentative address fails with EADDRNOTAVAIL; verified here).
      // Nothing else on these links could hold the same address.
      'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0',
      // No router advertisements are sent in the lab; routes are static.
      'net.ipv6.conf.all.accept_ra=0', 'net.ipv6.conf.default.accept_ra=0',
      ...(routing ? ['net.ipv6.conf.all.forwarding=1', 'net.ipv6.conf.default.forwarding=1'] : []),
    ]
    : ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'];
  if (routing) {
    settings.push(
      'net.ipv4.ip_forward=1',
      // With br_netfilter loaded, bridged LAN traffic would also cross the IP hooks and NAT.
      'net.bridge.bridge-nf-call-iptables=0',
      'net.bridge.bridge-nf-call-ip6tables=0',
      'net.bridge.bridge-nf-call-arptables=0',
    );
  }
  if (netns === plan.inet.netns) {
    // The core router forwards NAT-to-NAT traffic back out of the bridge it came in on (see
    // topology.ts); an ICMP redirect would tell the NATs to talk directly after all. Set before
    // the links exist, so the core bridge inherits it from `default` (the kernel ORs `all` with
    // the interface's own value).
    settings.push('net.ipv4.conf.all.send_redirects=0', 'net.ipv4.conf.default.send_redirects=0');
  }
  return settings;
}

async function build(plan: LabPlan, processes: ProcessSet, signal: AbortSignal | undefined): Promise<void> {
  const checkAbort = (): void => {
    if (signal?.aborted) throw new AbortedError(`lab ${plan.prefix}: creation aborted`, { cause: signal.reason });
  };
  const namespaces = planNamespaces(plan);
  await mustRun(processes, 'create namespaces', ['ip', '-batch', '-'], { input: namespaces.map((n) => `netns add ${n}\n`).join('') });
  checkAbort();
  // -e: the bridge sysctls exist only where br_netfilter is loaded.
  await Promise.all(namespaces.map((netns) => mustRun(processes, `sysctl in ${netns}`, inNetns(netns, ['sysctl', '-q', '-e', '-w', ...sysctlsFor(plan, netns)]))));
  checkAbort();
  for (const batch of planIpBatches(plan)) {
    await mustRun(processes, `links and addresses in ${batch.netns}`, ['ip', '-n', batch.netns, '-batch', '-'], { input: batch.lines.join('\n') + '\n' });
  }
  checkAbort();
  await Promise.all(
    plan.routers.map(async (router) => {
      const nft = (netns: string, input: string): Promise<string> => mustRun(processes, `nftables in ${netns}`, inNetns(netns, ['nft', '-f', '-']), { input });
      await nft(router.netns, natRuleset(router) + (router.ipv6 ? firewall6Ruleset(router) : ''));
      // The other end of the WAN link drops the outbound share of the loss.
      if (router.options.lossPercent > 0) await nft(router.uplink.netns, lossRuleset(router.uplink.ifname, router.options.lossPercent));
      const timeout = router.options.udpTimeoutSeconds;
      if (timeout !== null) {
        // Per-namespace conntrack settings; they exist once the ruleset has loaded conntrack here.
        await mustRun(processes, `conntrack timeouts in ${router.netns}`, inNetns(router.netns, [
          'sysctl', '-q', '-w', `net.netfilter.nf_conntrack_udp_timeout=${timeout}`, `net.netfilter.nf_conntrack_udp_timeout_stream=${timeout}`,
        ]));
      }
    }),
  );
  checkAbort();
}

/**
 * Build a lab. Leftover namespaces of the same prefix, and labs of processes that died without
 * cleaning up (see destroyStaleLabs), are deleted first. On any failure part-way
 * what was made is torn down and a LabError (AbortedError when `signal` aborted) is thrown.
 */
export async function createLab(options: LabOptions): Promise<Lab> {
  const support = labSupport();
  if (!support.ok) throw new LabError(`lab: ${support.reason}`, { notRoot: process.getuid?.() !== 0 });
  const prefix = options.prefix ?? defaultPrefix();
  validatePrefix(prefix);
  const plan = planLab(prefix, options.a, options.b, { ipv6: options.ipv6 ?? false });
  if (options.signal?.aborted) throw new AbortedError(`lab ${prefix}: creation aborted before it started`, { cause: options.signal.reason });

  await destroyStaleLabs();
  await destroyPrefix(prefix);
  const processes = new ProcessSet();
  // Registered before the first namespace exists, so even a crash mid-build cleans up.
  registerForExitCleanup(prefix, processes);
  let lab: RunningLab;
  try {
    await build(plan, processes, options.signal);
    lab = new RunningLab(plan, processes);
    for (const router of plan.routers) {
      if (router.options.miniupnpd) await (lab.routers[router.name] as LabRouter).prepareMiniupnpd();
    }
  } catch (error) {
    await processes.killAll();
    await destroyPrefix(prefix).catch(() => {});
    releaseFromExitCleanup(prefix);
    if (error instanceof AbortedError) throw error;
    throw new LabError(`lab ${prefix}: creation failed and was undone: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (options.persistent) releaseFromExitCleanup(prefix);
  if (options.signal !== undefined) {
    const signal = options.signal;
    const onAbort = (): void => void lab.down();
    signal.addEventListener('abort', onAbort, { once: true });
    // A long-lived signal (one per `natpunch lab matrix` run) must not collect a listener per lab.
    lab.onDown = () => signal.removeEventListener('abort', onAbort);
  }
  return lab;
}

/** Run `fn` with a fresh lab and always tear it down, whether `fn` resolves or throws. */
export async function withLab<T>(options: LabOptions, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await createLab(options);
  try {
    return await fn(lab);
  } finally {
    await lab.down();
  }
}
