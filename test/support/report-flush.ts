/**
 * Preloaded into every test process (`node --import`, package.json's `test` script).
 *
 * Why: with `--test-force-exit`, Node's test runner ends each test file's process with
 * process.exit() as soon as its tests are done. Each file runs in a child process that streams
 * its results to the runner over stdout, a pipe, and on Linux a pipe is written asynchronously:
 * the exit can cut off the last results, which then never reach the report. The run still
 * fails when a test fails (the child's exit code), but passing tests vanish from the count
 * (seen here: 27 of the 295 tests of test/wire; nodejs/node#64833). A blocking stdout makes
 * every result written before the process can exit.
 */
const stdout = process.stdout as unknown as { _handle?: { setBlocking?: (blocking: boolean) => number } };
stdout._handle?.setBlocking?.(true);

export {};
