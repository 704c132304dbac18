/**
 * A test reporter that prints nothing until the run ends, and then one block per failed test:
 * its name, its file and line, and its error.
 *
 * Why: `npm test` reports in TAP, where a failure is one `not ok` line among some ten thousand.
 * A CI log is often read from its tail, or only an excerpt of it is kept, and then "# fail 1"
 * says that something failed but not what. This reporter runs besides TAP (package.json's
 * `test` script) so that the tail of every run names its failures.
 */
import type { TestEvent } from 'node:test/reporters';

interface Failure {
  name: string;
  where: string;
  error: string;
}

/** Errors longer than this are cut: the full text is in the TAP above. */
const MAX_ERROR_CHARS = 4000;

export default async function* failuresReporter(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  const failures: Failure[] = [];
  for await (const event of source) {
    // The summary goes out with the run's own "fail N" line, not when the stream ends: under
    // `--test-force-exit` the runner exits before the reporters see the end of their stream.
    if (event.type === 'test:diagnostic' && event.data.nesting === 0 && /^fail \d+$/.test(event.data.message)) {
      if (failures.length > 0) yield summary(failures);
      failures.length = 0;
      continue;
    }
    if (event.type !== 'test:fail') continue;
    const { name, file, line, details } = event.data as {
      name: string;
      file?: string;
      line?: number;
      details: { error?: unknown };
    };
    // A suite fails when one of its tests does; the test itself is already listed.
    const error = details.error as { failureType?: string; cause?: unknown } | undefined;
    if (error?.failureType === 'subtestsFailed') continue;
    failures.push({ name, where: `${file ?? '(no file)'}${line === undefined ? '' : `:${line}`}`, error: describe(error) });
  }
  if (failures.length > 0) yield summary(failures);
}

function summary(failures: Failure[]): string {
  let text = `\n# ${failures.length} failed test${failures.length === 1 ? '' : 's'}:\n`;
  for (const failure of failures) {
    text += `#\n# ✖ ${failure.name}\n#   at ${failure.where}\n`;
    text += failure.error.split('\n').map((line) => `#   ${line}`).join('\n') + '\n';
  }
  return text;
}

/** The test runner wraps what a test threw in an ERR_TEST_FAILURE whose cause is the real error. */
function describe(error: { cause?: unknown } | undefined): string {
  const cause = error?.cause ?? error;
  const text =
    cause instanceof Error ? (cause.stack ?? `${cause.name}: ${cause.message}`) : String(cause);
  return text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS)}…` : text;
}
