import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../support/cli.js';
import { type CommandSpec, fallback, parseCommand } from '../../src/cli/args.js';
import { checkSpec } from '../../src/cli/check.js';
import { connectSpec } from '../../src/cli/connect.js';
import { demoSpec } from '../../src/cli/demo.js';
import { idSpec } from '../../src/cli/id.js';
import { listenSpec } from '../../src/cli/listen.js';
import { serveSpec } from '../../src/cli/serve.js';
import { punchSpec } from '../../src/cli/punch.js';

const specs: CommandSpec[] = [serveSpec, checkSpec, idSpec, listenSpec, connectSpec, punchSpec, demoSpec];

for (const spec of specs) {
  test(`natpunch ${spec.name} --help lists every flag its parser accepts, with its meaning, default and example`, async () => {
    const help = await runCli(spec.name, '--help');
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, new RegExp(`^usage: natpunch ${spec.name}\\b`));
    for (const [name, flag] of Object.entries(spec.flags)) {
      const head = flag.type === 'string' ? `  --${name} ${flag.value}` : `  --${name}`;
      assert.ok(help.stdout.includes(`\n${head}`), `--${name} missing from the help:\n${help.stdout}`);
      assert.ok(help.stdout.includes(flag.help), `--${name}'s meaning missing`);
      const shown = fallback(flag);
      if (!flag.required) assert.ok(shown !== undefined && help.stdout.includes(`default: ${shown}`), `--${name}'s default missing`);
      assert.ok(flag.example && help.stdout.includes(`e.g. ${flag.example}`), `--${name}'s example missing`);
      // And the parser accepts it: the help is made from the same table, so they cannot drift.
      const { values } = parseCommand(spec, [`--${name}${flag.type === 'string' ? '=x' : ''}`, ...(spec.positionals ? ['POSITIONAL'] : [])]);
      assert.ok(values[name] !== undefined, `--${name} not parsed`);
    }
  });
}

test('the help of commands with a key says where the key lives; natpunch --help too', async () => {
  for (const command of ['id', 'listen', 'connect', 'punch']) {
    const help = await runCli(command, '--help');
    assert.match(help.stdout, /--key FILE\n.*\n\s+default: \$NATPUNCH_HOME\/key, or ~\/\.natpunch\/key when NATPUNCH_HOME is unset/, command);
  }
  const top = await runCli('--help');
  assert.equal(top.code, 0);
  assert.match(top.stdout, /The key \(this machine's identity\) lives in \$NATPUNCH_HOME\/key/);
  for (const spec of specs) assert.match(top.stdout, new RegExp(`natpunch ${spec.name}\\b`));
});

test('an option the parser does not know is refused as a usage error, not taken', async () => {
  const result = await runCli('listen', '--allow-list', 'x');
  assert.equal(result.code, 2);
  assert.match(result.stderr, /unknown option --allow-list/);
});
