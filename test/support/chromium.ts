/**
 * Headless Chromium driven by playwright-core, for the browser tests: inside a lab host's network
 * namespace for WebRTC interop (a real WebRTC stack gathering candidates from our STUN and TURN
 * and punching through the lab's NATs), and in a namespace of its own for the dashboard.
 *
 * Playwright talks to the browser over a pipe (--remote-debugging-pipe), not a socket, so the
 * browser can live in a namespace the test process has no route into. playwright-core ships no
 * browser and downloads none: it runs Debian's /usr/bin/chromium through a generated wrapper
 * that enters the namespace.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { destroyPrefix, labSupport, type Host } from '../../src/lab/index.js';
import { inNetns, mustRun, ProcessSet, registerForExitCleanup, releaseFromExitCleanup } from '../../src/lab/netns.js';

/** Debian's chromium (`apt-get install chromium`); its launcher script sources /etc/chromium.d. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Flags that keep Chromium from reaching any host of its own accord (component updates, sync,
 * field trials, QUIC probes, first-run pages): the lab has no route out, but a browser that
 * tried would still be talking to the world from a test. --no-sandbox because we run as root;
 * --disable-dev-shm-usage because a namespace shares the host's possibly small /dev/shm.
 * Playwright adds its own set beside these (e.g. --disable-field-trial-config), and a fresh
 * temporary --user-data-dir per launch, which it deletes on close. launchChromiumIn adds
 * --host-resolver-rules (resolverRules).
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/**
 * The page's origin. Chromium only gives `crypto.subtle` (for the SHA-256 of what arrived) to a
 * secure context, which about:blank is not; so the page is served from an https URL that
 * playwright answers itself (page.route): no request leaves the browser. `.test` is reserved
 * (RFC 6761), so nothing could ever resolve it anyway.
 */
export const PAGE_URL = 'https://webrtc.natpunch.test/';

/** Skip with a printed reason when Debian's chromium is not installed (CI installs it). */
export function skipUnlessChromium(t: TestContext): boolean {
  if (existsSync(CHROMIUM)) return false;
  const reason = `${CHROMIUM} not installed (apt-get install -y chromium; scripts/setup.sh installs it as root)`;
  console.log(`# SKIP ${t.name}: ${reason}`);
  t.skip(reason);
  return true;
}

/**
 * Even with CHROMIUM_ARGS, Chromium 156 looks up update.googleapis.com and accounts.google.com
 * at start-up (seen with tcpdump in the namespace). The lab has no route out, but no query
 * should even be tried: every name fails inside the browser. IP literals are names to this rule
 * too, and Chromium resolves them for TCP (a `turn:…?transport=tcp` server fails with 701
 * without trying to connect), so the addresses the browser may reach are excluded by name.
 */
function resolverRules(reachable: readonly string[]): string {
  return `--host-resolver-rules=${['MAP * ~NOTFOUND', ...reachable.map((address) => `EXCLUDE ${address}`)].join(', ')}`;
}

/** An executable in `dir` that runs Debian's chromium inside `netns` (playwright's executablePath). */
async function netnsWrapper(dir: string, netns: string): Promise<string> {
  const wrapper = join(dir, 'chromium');
  // `exec` twice, so the pid playwright holds is Chromium's own and its process group is the browser's.
  await writeFile(wrapper, `#!/bin/sh\nexec ip netns exec '${netns}' '${CHROMIUM}' "$@"\n`);
  await chmod(wrapper, 0o755);
  return wrapper;
}

export interface LabBrowser {
  browser: Browser;
  /** A page at PAGE_URL with `html` as its document. */
  open(html: string): Promise<Page>;
  /** Close the browser (playwright kills its whole process group) and remove its files. Idempotent. */
  close(): Promise<void>;
}

/**
 * Launch headless Chromium inside `host`'s network namespace; it may resolve (and so reach over
 * TCP) only the IP literals in `reachable`. The caller must close() it, in a finally: a browser
 * left running would keep the lab's namespace alive after `lab.down()`.
 */
export async function launchChromiumIn(host: Host, reachable: readonly string[]): Promise<LabBrowser> {
  const dir = await mkdtemp(join(tmpdir(), `natpunch-chromium-${host.name}-`));
  // A HOME of its own: Chromium writes ~/.pki and ~/.cache besides the profile, and must not
  // touch (or be confused by) root's.
  await mkdir(join(dir, 'home'));
  const wrapper = await netnsWrapper(dir, host.netns);
  let browser: Browser;
  try {
    browser = await chromium.launch({
      executablePath: wrapper,
      args: [...CHROMIUM_ARGS, resolverRules(reachable)],
      // No session bus in a test container: without this Chromium retries DBus for every
      // subsystem and fills the log (harmless, but it buries real errors).
      env: { ...process.env, HOME: join(dir, 'home'), DBUS_SESSION_BUS_ADDRESS: 'disabled:' },
      timeout: 60_000,
    });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  let closed: Promise<void> | null = null;
  return {
    browser,
    async open(html: string): Promise<Page> {
      const page = await browser.newPage();
      await page.route('**/*', (route) => route.request().url() === PAGE_URL
        ? route.fulfill({ status: 200, contentType: 'text/html', body: html })
        : route.abort());
      await page.goto(PAGE_URL);
      return page;
    },
    close(): Promise<void> {
      closed ??= browser.close().finally(() => rm(dir, { recursive: true, force: true }));
      return closed;
    },
  };
}

/**
 * Where a browser that loads pages from this process runs. As root: a network namespace of its
 * own, joined to this one by a veth pair and nothing else (no default route, no IPv6), so the
 * browser can reach `hostAddress` and no other host. Chromium in the root namespace, even with
 * CHROMIUM_ARGS and the resolver rules, was seen making the kernel solicit the VM's IPv6 gateway
 * (1 run in 4): something in it looked for a route off the host, which the network rule forbids.
 * Not root: this namespace and loopback, the best that can be done without privileges.
 */
export interface BrowserNetwork {
  /** The browser's namespace; undefined when it shares this process's. */
  netns?: string;
  /** This process's address as the browser sees it: serve the pages there. */
  hostAddress: string;
  /** Why the browser is not isolated, when it is not (for a test's diagnostic). */
  notIsolated?: string;
  /** Delete the namespace (and so the veth pair). Idempotent. */
  close(): Promise<void>;
}

let networkCounter = 0;

export async function openBrowserNetwork(): Promise<BrowserNetwork> {
  const support = labSupport();
  if (!support.ok) return { hostAddress: '127.0.0.1', notIsolated: support.reason, close: async () => undefined };
  networkCounter += 1;
  // Named like a default lab prefix (np<pid>n<k>), so destroyStaleLabs removes it if this
  // process dies before close(); a k no lab of one test process reaches keeps the two apart.
  const prefix = `np${process.pid}n${900_000 + networkCounter}`;
  const netns = `${prefix}-browser`;
  const outer = `npb${process.pid % 100_000}x${networkCounter}`.slice(0, 15);
  // A /30 out of link-local space, varied by pid so two test processes never share one.
  const subnet = `169.254.${200 + (process.pid % 50)}`;
  const first = 4 * (networkCounter % 64);
  const hostAddress = `${subnet}.${first + 1}`;
  const browserAddress = `${subnet}.${first + 2}`;
  const processes = new ProcessSet();
  registerForExitCleanup(prefix, processes);
  const close = async (): Promise<void> => {
    releaseFromExitCleanup(prefix);
    await destroyPrefix(prefix);
  };
  try {
    const ip = (argv: string[]): Promise<string> => mustRun(processes, 'browser network', ['ip', ...argv]);
    await ip(['netns', 'add', netns]);
    await mustRun(processes, 'browser network', inNetns(netns, ['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']));
    await ip(['link', 'add', outer, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
    await mustRun(processes, 'browser network', ['sysctl', '-q', '-w', `net.ipv6.conf.${outer}.disable_ipv6=1`]);
    await ip(['address', 'add', `${hostAddress}/30`, 'dev', outer]);
    await ip(['link', 'set', outer, 'up']);
    await ip(['-n', netns, 'address', 'add', `${browserAddress}/30`, 'dev', 'eth0']);
    await ip(['-n', netns, 'link', 'set', 'eth0', 'up']);
    await ip(['-n', netns, 'link', 'set', 'lo', 'up']);
  } catch (error) {
    await close();
    throw error;
  }
  return { netns, hostAddress, close };
}

export interface HeadlessChromium {
  context: BrowserContext;
  /** Closes the browser and removes its profile; safe to call twice. */
  close(): Promise<void>;
}

/**
 * Chromium headless with a fresh profile, in `network` (see openBrowserNetwork), for pages this
 * process serves: it may resolve (and so reach) only `network.hostAddress`. `headers` go with every
 * request the browser makes (an Authorization header, say).
 */
export async function launchChromium(viewport: { width: number; height: number }, network: BrowserNetwork, headers: Record<string, string> = {}): Promise<HeadlessChromium> {
  const dir = await mkdtemp(join(tmpdir(), 'natpunch-chromium-'));
  let context: BrowserContext;
  try {
    await mkdir(join(dir, 'home'));
    const executablePath = network.netns === undefined ? CHROMIUM : await netnsWrapper(dir, network.netns);
    context = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath, headless: true, args: [...CHROMIUM_ARGS, resolverRules([network.hostAddress])], viewport, timeout: 60_000,
      extraHTTPHeaders: headers,
      env: { ...process.env, HOME: join(dir, 'home'), DBUS_SESSION_BUS_ADDRESS: 'disabled:' },
    });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`could not start ${CHROMIUM} headless: ${(error as Error).message}`, { cause: error });
  }
  let closed: Promise<void> | null = null;
  return {
    context,
    close(): Promise<void> {
      closed ??= context.close().catch(() => undefined).finally(() => rm(dir, { recursive: true, force: true }));
      return closed;
    },
  };
}
