/**
 * Loading natpunch's optional native addons (native/<name>/, built from source at install by
 * npm's node-gyp). Each one does a single thing Node has no API for (a TCP socket's TTL before
 * its SYN, batched UDP sends); without it the caller keeps a pure-JS path, so loading never
 * throws: it says why the addon is not there.
 */
import { createRequire } from 'node:module';

export type AddonAvailability = { ok: true } | { ok: false; reason: string };

interface Loaded {
  addon?: unknown;
  reason?: string;
}

const cache = new Map<string, Loaded>();

/**
 * The addon `native/<name>/build/Release/<file>.node` (from dist/src/native/ or src/native/), or
 * why not: NATPUNCH_NO_NATIVE=1, another platform than Linux (`needs` names the kernel features),
 * or not built. Loaded once per process.
 */
export function loadAddon<T>(name: string, file: string, needs: string): { addon: T } | { reason: string } {
  if (process.env['NATPUNCH_NO_NATIVE'] === '1') return { reason: 'NATPUNCH_NO_NATIVE=1 turns the native addon off' };
  let loaded = cache.get(name);
  if (!loaded) {
    loaded = load(name, file, needs);
    cache.set(name, loaded);
  }
  return loaded.addon !== undefined ? { addon: loaded.addon as T } : { reason: loaded.reason! };
}

/** `loadAddon` as the availability callers report in debug output and --json. */
export function addonAvailability(name: string, file: string, needs: string): AddonAvailability {
  const result = loadAddon<unknown>(name, file, needs);
  return 'addon' in result ? { ok: true } : { ok: false, reason: result.reason };
}

function load(name: string, file: string, needs: string): Loaded {
  if (process.platform !== 'linux') return { reason: `not Linux (${process.platform}): native/${name} needs ${needs}` };
  const require = createRequire(import.meta.url);
  const errors: string[] = [];
  for (const up of ['../../../', '../../']) {
    const url = new URL(`${up}native/${name}/build/Release/${file}.node`, import.meta.url);
    try {
      return { addon: require(url.pathname) };
    } catch (error) {
      errors.push(`${url.pathname}: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  return { reason: `native/${name} is not built (run \`npm run build:native\`; needs python3, make and a C compiler): ${errors[0]}` };
}
