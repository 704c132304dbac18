#!/usr/bin/env node
// Builds natpunch's optional native addons: npm's `install` script and scripts/setup.sh run it.
// Each addon is optional; a failed build is never fatal. It is reported with its real cause:
// node-gyp's output is kept, a known cause is named (no Python, no make, no C compiler, Node's
// headers could not be fetched, no OpenSSL headers), and node-gyp's last lines are shown, rather
// than a guess. `--verbose-ok` (setup.sh) also says when an addon did build, so a build that
// works after an earlier failure says so. An addon the package carries prebuilt for this
// platform (native/<addon>/prebuilds/<platform>-<arch>/, see scripts/prebuild.mjs) and that loads
// here is not compiled at all: installing the packed package needs no compiler.
// usage: node scripts/build-native.mjs [--verbose-ok] [--from-source] [ADDON...]   (ADDON: tcp-ttl, udp-batch, aead)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { addons, prebuiltFile } from './native-addons.mjs';
const LAST_LINES = 8;

const args = process.argv.slice(2);
const verboseOk = args.includes('--verbose-ok');
// --from-source (prebuild.mjs): compile even when a prebuilt addon is there.
const fromSource = args.includes('--from-source');
const only = args.filter((a) => a !== '--verbose-ok' && a !== '--from-source');
for (const name of only) {
  if (!(name in addons)) {
    console.error(`build-native: unknown addon ${JSON.stringify(name)}; choose among ${Object.keys(addons).join(', ')}`);
    process.exit(2);
  }
}

for (const [dir, { without }] of Object.entries(addons)) {
  if (only.length > 0 && !only.includes(dir)) continue;
  const prebuilt = fromSource ? undefined : loadablePrebuilt(dir);
  if (prebuilt) {
    if (verboseOk) console.error(`natpunch: native/${dir}: using the prebuilt ${prebuilt}`);
    continue;
  }
  const gyp = nodeGyp();
  const run = spawnSync(gyp[0], [...gyp.slice(1), 'rebuild', '--directory', `native/${dir}`], { encoding: 'utf8', maxBuffer: 64 << 20, env: buildEnv() });
  if (run.status === 0) {
    if (verboseOk) console.error(`natpunch: native/${dir} built`);
    continue;
  }
  const output = run.error ? '' : `${run.stdout ?? ''}\n${run.stderr ?? ''}`;
  const telling = tellingLines(output);
  console.error(`natpunch: ${without}: native/${dir} did not build: ${cause(run, telling.join('\n'))}`
    + (telling.length ? `\n  from node-gyp:\n${telling.map((line) => `    ${line}`).join('\n')}` : ''));
}

/** The package's prebuilt addon for this platform, if there is one and it loads in this Node. */
function loadablePrebuilt(dir) {
  const file = resolve(prebuiltFile(dir));
  if (!existsSync(file)) return undefined;
  try {
    createRequire(import.meta.url)(file);
    return prebuiltFile(dir);
  } catch (error) {
    console.error(`natpunch: native/${dir}: the prebuilt ${file} does not load here (${String(error.message).split('\n')[0]}); building from source`);
    return undefined;
  }
}

/** node-gyp as npm runs it (npm_config_node_gyp in npm's scripts), else npm's bundled one beside this node, else PATH's. */
function nodeGyp() {
  const bundled = [process.env.npm_config_node_gyp, join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')];
  const script = bundled.find((file) => file && existsSync(file));
  return script ? [process.execPath, script] : ['node-gyp'];
}

/**
 * Offline, node-gyp needs Node's headers locally: Debian's nodejs-dev ships them in
 * /usr/include/node (with Node's OpenSSL headers, which native/aead compiles against).
 */
function buildEnv() {
  const configured = process.env.npm_config_nodedir;
  if ((configured === undefined || configured === '' || configured === 'undefined') && existsSync('/usr/include/node/node_api.h')) {
    return { ...process.env, npm_config_nodedir: '/usr' };
  }
  return process.env;
}

/**
 * The lines of node-gyp's output that say what failed: its errors and warnings and the
 * compiler's, without the stack and the environment it prints after every failure (the last
 * lines, which tell nothing); the last few lines when none match.
 */
function tellingLines(output) {
  const lines = output.split('\n').map((line) => line.trimEnd()).filter((line) => line.trim() !== '');
  const noise = /^gyp ERR! (stack\s+at |System |command |cwd |node -v |node-gyp -v |not ok)/;
  const telling = lines.filter((line) => !noise.test(line) && (/^gyp (ERR!|WARN|http)/.test(line) || /\berror\b|not found|No such file/i.test(line)));
  return (telling.length ? telling : lines).slice(-LAST_LINES);
}

/** The real cause, when node-gyp's output names one we know; else where to look. */
function cause(run, output) {
  if (run.error?.code === 'ENOENT') return 'node-gyp was not found (npm bundles it: run this through npm, e.g. npm run build:native)';
  if (run.error) return `node-gyp could not run (${run.error.message})`;
  if (/gyp ERR! find Python|Could not find any Python|python3?: (command )?not found/i.test(output)) return 'no Python 3 (node-gyp needs it): install python3';
  if (/not found: make|make: (command )?not found|spawn make ENOENT/i.test(output)) return 'no make: install make (Debian: build-essential)';
  if (/\b(cc|gcc|g\+\+|c\+\+|clang): (command )?not found|spawn (cc|gcc|g\+\+) ENOENT|No such file or directory.*\b(cc|gcc|g\+\+)\b/i.test(output)) return 'no C compiler: install one (Debian: build-essential)';
  if (/openssl\/[\w.]+: No such file/i.test(output)) return 'Node\'s OpenSSL headers are missing (Debian: nodejs-dev ships them in /usr/include/node/openssl)';
  if (/network connectivity|getaddrinfo|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ECONNRESET|self.signed|certificate|tarball|gyp http GET/i.test(output)) {
    return 'node-gyp could not download Node\'s headers (offline, or a proxy in the way); point it at local ones: npm_config_nodedir=/usr when /usr/include/node exists (Debian: nodejs-dev)';
  }
  if (/node_api\.h: No such file|node\.h: No such file|common\.gypi not found/i.test(output)) return 'Node\'s headers are missing: set npm_config_nodedir to a Node source or headers directory (Debian: npm_config_nodedir=/usr with nodejs-dev)';
  return `node-gyp exited ${run.status ?? run.signal}`;
}
