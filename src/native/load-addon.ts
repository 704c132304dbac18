/**
 * Loading natpunch's optional native addons (native/<name>/): built from source by node-gyp
 * (a clone, or an install where no prebuilt one fits), or prebuilt for this platform and
 * carried by the npm package (`native/<name>/prebuilds/<platform>-<arch>/`, made by
 * scripts/prebuild.mjs at `npm pack`: N-API, so one build serves every Node >= 20). Each one
 * does a single thing Node has no API for (a TCP socket's TTL before its SYN, batched UDP
 * sends); without it the caller keeps a pure-JS path, so loading never
 * throws: it says why the addon is not there.
 */
import { createRequire } from 'node:module';

/**
 * Whether an addon is there; when it is, which build: compiled here, or the package's prebuilt
 * one (absent for stand-ins, such as the simulator's).
 */
export type AddonAvailability = { ok: true; build?: AddonBuild } | { ok: false; reason: string };

/** `built`: native/<name>/build/Release (node-gyp on this machine); `prebuilt`: the package's prebuilds. */
export type AddonBuild = 'built' | 'prebuilt';

interface Loaded {
  addon?: unknown;
  build?: AddonBuild;
  reason?: string;
}

const cache = new Map<string, Loaded>();

/**
 * The addon `native/<name>/build/Release/<file>.node` (from dist/src/native/ or src/native/), or
 * why not: NATPUNCH_NO_NATIVE=1, another platform than Linux (`needs` names the kernel features),
 * or not built. Loaded once per process.
 */
export function loadAddon<T>(name: string, file: string, needs: string): { addon: T; build: AddonBuild } | { reason: string } {
  if (process.env['NATPUNCH_NO_NATIVE'] === '1') return { reason: 'NATPUNCH_NO_NATIVE=1 turns the native addon off' };
  let loaded = cache.get(name);
  if (!loaded) {
    loaded = load(name, file, needs);
    cache.set(name, loaded);
  }
  return loaded.addon !== undefined ? { addon: loaded.addon as T, build: loaded.build! } : { reason: loaded.reason! };
}

/** `loadAddon` as the availability callers report in debug output and --json. */
export function addonAvailability(name: string, file: string, needs: string): AddonAvailability {
  const result = loadAddon<unknown>(name, file, needs);
  return 'addon' in result ? { ok: true, build: result.build } : { ok: false, reason: result.reason };
}

function load(name: string, file: string, needs: string): Loaded {
  if (process.platform !== 'linux') return { reason: `not Linux (${process.platform}): native/${name} needs ${needs}` };
  const require = createRequire(import.meta.url);
  const errors: string[] = [];
  // A build from this machine first: it was compiled against exactly this Node and libc.
  const builds: [AddonBuild, string][] = [['built', `build/Release/${file}.node`], ['prebuilt', prebuiltPath(file)]];
  for (const [build, path] of builds) {
    for (const up of ['../../../', '../../']) {
      const url = new URL(`${up}native/${name}/${path}`, import.meta.url);
      try {
        return { addon: require(url.pathname), build };
      } catch (error) {
        errors.push(`${url.pathname}: ${(error as Error).message.split('\n')[0]}`);
      }
    }
  }
  return { reason: `native/${name} is not built and no prebuilt one fits ${process.platform}-${process.arch} (run \`npm run build:native\`; needs python3, make and a C compiler): ${errors[0]}` };
}

/**
 * Where the npm package carries an addon prebuilt for this platform (node-gyp-build's layout;
 * scripts/native-addons.mjs's prebuiltFile names the same place for the install scripts).
 */
function prebuiltPath(file: string): string {
  return `prebuilds/${process.platform}-${process.arch}/${file}.node`;
}
