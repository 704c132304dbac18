/**
 * miniupnpd (UPnP IGD, NAT-PMP and PCP in one daemon) inside a lab NAT router, so port-mapping
 * clients have a real gateway to talk to.
 *
 * Two facts shape this (NATLAB-FACTS): Debian's nft_init.sh is broken, so the lab creates
 * miniupnpd's tables itself; and miniupnpd 2.3.1 refuses to map when its WAN address is in a
 * reserved range unless it learns through STUN that the NAT in front of it is
 * endpoint-independent, so it needs a STUN server answering the RFC 5780 tests.
 *
 * @see RFC 6886 (NAT-PMP), RFC 6887 (PCP)
 */

import type { ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from '../errors.js';
import { SERVER_ADDRESSES } from './topology.js';

export const MINIUPNPD_TABLE = 'miniupnpd';
/** Where the lab keeps files it writes for daemons and for `natpunch lab`. */
export const LAB_RUN_DIR = '/run/natpunch';
const STARTUP_TIMEOUT_MS = 15_000;
export const DEFAULT_STUN_PORT = 3478;
/** Lines kept from the daemon's log; enough to see why it stopped. */
const LOG_LINES = 500;

export interface MiniupnpdOptions {
  stunHost?: string;
  stunPort?: number;
  /** PCP's shortest granted lifetime (miniupnpd's min_lifetime, default 120 s): lower it to watch renewals. */
  minLifetimeSeconds?: number;
}

export interface MiniupnpdHandle {
  stop(): Promise<void>;
  log(): string;
}

/**
 * miniupnpd's nftables base chains, jumping into the chains the daemon fills. Its forward chain
 * runs just before the lab's own (priority -1 vs 0) and its prerouting NAT just before the lab's
 * (-101 vs -100), so a port mapping wins over the NAT kind's own inbound rules.
 */
export function miniupnpdRuleset(): string {
  const t = MINIUPNPD_TABLE;
  return [
    `table inet ${t}`,
    `delete table inet ${t}`,
    `table inet ${t} {`,
    '  chain miniupnpd { }',
    '  chain prerouting_miniupnpd { }',
    '  chain postrouting_miniupnpd { }',
    '  chain forward {\n    type filter hook forward priority -1; policy accept;\n    jump miniupnpd\n  }',
    '  chain prerouting {\n    type nat hook prerouting priority -101; policy accept;\n    jump prerouting_miniupnpd\n  }',
    '  chain postrouting {\n    type nat hook postrouting priority 99; policy accept;\n    jump postrouting_miniupnpd\n  }',
    '}',
    '',
  ].join('\n');
}

/**
 * miniupnpd's STUN client runs on the router itself; the RFC 5780 answers from the other port
 * (and address) are unsolicited as far as the router's input filter knows, so let them in.
 */
export function stunRepliesRule(table: string, stunPort: number): string {
  return `insert rule ip ${table} input iifname "wan" udp sport { ${stunPort}, ${stunPort + 1} } accept\n`;
}

export interface MiniupnpdFiles {
  config: string;
  pid: string;
  lease: string;
}

export function miniupnpdFiles(netns: string): MiniupnpdFiles {
  return {
    config: join(LAB_RUN_DIR, `${netns}-miniupnpd.conf`),
    pid: join(LAB_RUN_DIR, `${netns}-miniupnpd.pid`),
    lease: join(LAB_RUN_DIR, `${netns}-miniupnpd.leases`),
  };
}

export function miniupnpdConfig(router: { lanNetwork: string }, files: MiniupnpdFiles, options: MiniupnpdOptions = {}): string {
  return [
    'ext_ifname=wan',
    'listening_ip=lan',
    'http_port=0',
    'enable_natpmp=yes',
    'enable_upnp=yes',
    'secure_mode=yes',
    'ipv6_disable=yes',
    'ext_perform_stun=yes',
    `ext_stun_host=${options.stunHost ?? SERVER_ADDRESSES[0]}`,
    `ext_stun_port=${options.stunPort ?? DEFAULT_STUN_PORT}`,
    `upnp_table_name=${MINIUPNPD_TABLE}`,
    `upnp_nat_table_name=${MINIUPNPD_TABLE}`,
    'upnp_forward_chain=miniupnpd',
    'upnp_nat_chain=prerouting_miniupnpd',
    'upnp_nat_postrouting_chain=postrouting_miniupnpd',
    `lease_file=${files.lease}`,
    'uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b',
    'system_uptime=yes',
    'clean_ruleset_interval=600',
    ...(options.minLifetimeSeconds !== undefined ? [`min_lifetime=${options.minLifetimeSeconds}`] : []),
    `allow 1024-65535 ${router.lanNetwork} 1024-65535`,
    'deny 0-65535 0.0.0.0/0 0-65535',
    '',
  ].join('\n');
}

export function writeMiniupnpdConfig(netns: string, router: { lanNetwork: string }, options: MiniupnpdOptions = {}): MiniupnpdFiles {
  const files = miniupnpdFiles(netns);
  mkdirSync(LAB_RUN_DIR, { recursive: true });
  writeFileSync(files.config, miniupnpdConfig(router, files, options));
  return files;
}

export function removeMiniupnpdFiles(netns: string): void {
  for (const file of Object.values(miniupnpdFiles(netns))) rmSync(file, { force: true });
}

/**
 * Watch a started `miniupnpd -d`: resolve once it listens for NAT-PMP/PCP (the last thing it
 * sets up), reject with its log if it exits or stays silent too long.
 */
export function superviseMiniupnpd(child: ChildProcess, where: string): Promise<MiniupnpdHandle> {
  const lines: string[] = [];
  const log = (): string => lines.join('\n');
  const collect = (chunk: Buffer): void => {
    lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
    if (lines.length > LOG_LINES) lines.splice(0, lines.length - LOG_LINES);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    const onData = (): void => {
      if (/Listening for NAT-PMP/i.test(log())) {
        finish();
        resolve({ stop, log });
      }
    };
    const onExit = (code: number | null, signal: string | null): void => {
      finish();
      reject(new LabError(`${where}: miniupnpd exited during start-up (${code === null ? `signal ${signal}` : `exit ${code}`}), expected it to listen for NAT-PMP; its log:\n${log()}`));
    };
    const timer = setTimeout(() => {
      finish();
      void stop().then(() => reject(new LabError(`${where}: miniupnpd did not listen for NAT-PMP within ${STARTUP_TIMEOUT_MS} ms; its log:\n${log()}`)));
    }, STARTUP_TIMEOUT_MS);
    const finish = (): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}
