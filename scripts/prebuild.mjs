#!/usr/bin/env node
// Builds every native addon from source and copies it to native/<addon>/prebuilds/<platform>-<arch>/,
// where the npm package carries it (package.json `files`) and src/native/load-addon.ts finds it
// when nothing was compiled at install. npm runs this at `npm pack` / `npm publish` (prepack).
// The addons use N-API only, so one build per platform and architecture serves every Node >= 20.
//
// Another platform: run `node scripts/prebuild.mjs` there (Linux only: the addons wrap Linux
// socket options), then copy its native/*/prebuilds/<platform>-<arch>/ directories beside these
// before `npm pack` (prepack rebuilds only this machine's own directory).
//
// Unlike the install script, a failed build here is fatal: a package must not ship without them.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addons, prebuiltFile } from './native-addons.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
const started = Date.now();
// build-native.mjs names the real cause of a failure; it never exits non-zero, so each result is checked below.
const run = spawnSync(process.execPath, ['scripts/build-native.mjs', '--from-source', '--verbose-ok'], { stdio: 'inherit' });
if (run.status !== 0) fail(`scripts/build-native.mjs exited ${run.status ?? run.signal}`);
for (const [name, { file }] of Object.entries(addons)) {
  const built = `native/${name}/build/Release/${file}.node`;
  let fresh = false;
  try {
    fresh = statSync(built).mtimeMs >= started - 1_000;
  } catch { /* not built: said below */ }
  if (!fresh) fail(`native/${name} did not build (see above); install python3, make and a C compiler (Debian: build-essential) and run npm pack again`);
  const target = prebuiltFile(name);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(built, target);
  console.error(`natpunch: prebuilt ${target}`);
}

function fail(message) {
  console.error(`prebuild: ${message}`);
  process.exit(1);
}
