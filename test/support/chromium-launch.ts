import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';

/** Debian's Chromium: CI installs it (.ci/run); the browser is never downloaded. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Flags that keep Chromium to itself: without the background-networking ones it reaches out
 * to Google (component updates, sync, safe browsing, field trials), and tests send traffic to
 * loopback only. --no-sandbox: tests run as root, where Chromium's sandbox refuses to start.
 */
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** Why a browser test cannot run here, or undefined when it can. */
export function chromiumMissing(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (Debian package chromium; scripts/setup.sh installs it as root)`;
}

export interface HeadlessChromium {
  context: BrowserContext;
  /** Closes the browser and removes its profile; safe to call twice. */
  close(): Promise<void>;
}

/** Chromium headless with a fresh profile (its own --user-data-dir), through playwright-core. */
export async function launchChromium(viewport: { width: number; height: number }): Promise<HeadlessChromium> {
  const { chromium } = await import('playwright-core');
  const profile = await mkdtemp(join(tmpdir(), 'natpunch-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport, timeout: 60_000 });
  } catch (error) {
    await rm(profile, { recursive: true, force: true });
    throw new Error(`could not start ${CHROMIUM} headless: ${(error as Error).message}`, { cause: error });
  }
  let closed = false;
  return {
    context,
    async close() {
      if (closed) return;
      closed = true;
      await context.close().catch(() => undefined);
      await rm(profile, { recursive: true, force: true });
    },
  };
}
