/**
 * `natpunch --version` (one line: the version) and `natpunch version --verbose`: also Node, the
 * platform, and for each native addon whether it loaded and which build (compiled on this
 * machine, or the package's prebuilt one) — what to look at when punching through RST-sending
 * NATs or throughput differs between two installs.
 */
import type { AddonAvailability } from '../native/load-addon.js';
import { VERSION } from '../version.js';

export async function versionText(verbose: boolean): Promise<string> {
  if (!verbose) return VERSION;
  const [{ ttlPrimingAvailable }, { udpBatchAvailable }, { nativeAeadAvailable }] = await Promise.all([
    import('../punch/tcp-ttl.js'), import('../punch/udp-batch.js'), import('../secure/chachapoly-key.js'),
  ]);
  const addons: [string, AddonAvailability][] = [
    ['tcp-ttl', ttlPrimingAvailable()], ['udp-batch', udpBatchAvailable()], ['aead', nativeAeadAvailable()],
  ];
  return [
    `natpunch ${VERSION} (Node ${process.version}, ${process.platform}-${process.arch})`,
    'native addons:',
    ...addons.map(([name, availability]) => `  ${name.padEnd(10)} ${describe(availability)}`),
  ].join('\n');
}

function describe(availability: AddonAvailability): string {
  if (!availability.ok) return `not loaded: ${availability.reason}`;
  return availability.build === 'prebuilt' ? `loaded (prebuilt for ${process.platform}-${process.arch})` : 'loaded (built on this machine)';
}
