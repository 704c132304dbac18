/**
 * Each command's flags, declared once: the parser (node:util parseArgs) and the help text
 * (`natpunch COMMAND --help`) are both made from the same table, so help cannot drift from what
 * the parser accepts.
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../errors.js';

export interface Flag {
  type: 'string' | 'boolean';
  /** May be given several times (`[--allow PEER_ID]...`). */
  multiple?: boolean;
  /** Shown in the usage line without brackets. */
  required?: boolean;
  /** The value's placeholder in help (`URL`, `FILE`); string flags only. */
  value?: string;
  /** Handed to the parser as the value when the flag is absent. */
  default?: string | boolean;
  /** The default as help shows it, when it is not a constant (`$NATPUNCH_HOME/key or ~/.natpunch/key`). */
  defaultText?: string;
  /** What the flag does: one or two sentences. */
  help: string;
  /** An example use, e.g. `--server ws://203.0.113.7:8080/`. */
  example?: string;
  /** Left out of the usage line (still in the help's flag list). */
  hidden?: boolean;
  /**
   * Names a user may type for this flag from habit (another command's flag, another tool's):
   * never parsed, only suggested (`unknown option --server (did you mean --stun?)`).
   */
  misnamed?: string[];
}

export interface CommandSpec {
  /** `connect`, or `lab up` for a subcommand. */
  name: string;
  /** Positional arguments as shown in the usage line, e.g. `PEER_ID`. */
  positionals?: string;
  /** One line: what the command does. */
  summary: string;
  flags: Record<string, Flag>;
  /** Paragraphs after the flag list. */
  notes?: string[];
  /** Whole command lines. */
  examples?: string[];
}

/** Where the key lives unless --key says otherwise (identity/key-file.ts defaultKeyFile). */
export const KEY_FILE_DEFAULT = '$NATPUNCH_HOME/key, or ~/.natpunch/key when NATPUNCH_HOME is unset';

/** The --key flag every command with an identity takes. */
export const keyFlag: Flag = {
  type: 'string', value: 'FILE', defaultText: KEY_FILE_DEFAULT,
  help: 'this machine\'s Ed25519 key (its peer id); created with mode 0600 on first use',
  example: '--key ~/.natpunch/work.key',
};

export const jsonFlag: Flag = {
  type: 'boolean', help: 'one JSON event per line on stderr instead of text (ready, connected, path, error, closed, ...)',
  example: '--json 2> events.jsonl',
};

export const serverFlag: Flag = {
  type: 'string', value: 'URL', required: true, multiple: true,
  help: 'the rendezvous server (natpunch serve) both peers use; repeat it for several nodes sharing one registry (serve --redis): the first that answers is used, the next when it goes away',
  example: '--server ws://203.0.113.7:8080/', misnamed: ['rendezvous', 'url', 'signal'],
};

type ParsedValues = Record<string, string | boolean | string[] | undefined>;

/**
 * Parse `argv` by `spec`; a parser error is a UsageError (exit 2) naming the command and how to
 * get its help.
 */
export function parseCommand(spec: CommandSpec, argv: string[]): { values: ParsedValues; positionals: string[] } {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; default?: string | boolean }> = {};
  for (const [name, flag] of Object.entries(spec.flags)) {
    options[name] = { type: flag.type, ...(flag.multiple ? { multiple: true } : {}), ...(flag.default !== undefined ? { default: flag.default } : {}) };
  }
  try {
    const { values, positionals } = parseArgs({ args: argv, strict: true, allowPositionals: spec.positionals !== undefined, options });
    return { values: values as ParsedValues, positionals };
  } catch (error) {
    throw new UsageError(`natpunch ${spec.name}: ${parserMessage(error as Error, spec)}; run 'natpunch ${spec.name} --help' for the flags`);
  }
}

/** The name among `names` (flags, commands) a mistyped word (`--flag` or `command`) most likely meant: at most 2 edits away, else undefined. */
export function closestName(word: string, names: readonly string[]): string | undefined {
  const typed = word.replace(/^-+/, '').split('=')[0]!;
  let best: { name: string; distance: number } | undefined;
  for (const name of names) {
    const distance = editDistance(typed, name);
    if (distance <= Math.min(2, Math.floor(name.length / 3)) && (!best || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

/** Levenshtein distance, with a swap of two neighbours counting as one edit (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * node:util's messages, made one balanced sentence: the unknown-option one ends with an
 * unclosed quote (`as in '-- "--bogus"`), and all end with a full stop we continue after.
 */
function parserMessage(error: Error & { code?: string }, spec: CommandSpec): string {
  const message = error.message;
  const flags = Object.entries(spec.flags);
  const unknown = /^Unknown option '([^']*)'/.exec(message);
  if (unknown) {
    const typed = unknown[1]!.replace(/^-+/, '').split('=')[0]!;
    const meant = flags.find(([, flag]) => flag.misnamed?.includes(typed))?.[0] ?? closestName(typed, flags.map(([name]) => name));
    return `unknown option ${unknown[1]}${meant ? ` (did you mean --${meant}?)` : ''}`;
  }
  const positional = /^Unexpected argument '([^']*)'/.exec(message);
  if (positional) {
    // A command without positionals whose one required value came bare (`check HOST:PORT`).
    const required = flags.filter(([, flag]) => flag.required && flag.type === 'string');
    const meant = spec.positionals === undefined && required.length === 1 ? ` (did you mean --${required[0]![0]} ${positional[1]}?)` : '';
    return `unexpected argument ${JSON.stringify(positional[1])}${meant}`;
  }
  const missing = /^Option '([^']*)' argument missing/.exec(message);
  if (missing) return `${missing[1]!.replace(/^-\w, /, '').split(' ')[0]} needs a value`;
  return message.replace(/\.$/, '');
}

/** `natpunch connect PEER_ID --server URL [--key FILE] ...`, from the spec. */
export function usageLine(spec: CommandSpec): string {
  const parts = [`natpunch ${spec.name}`];
  if (spec.positionals) parts.push(spec.positionals);
  for (const [name, flag] of Object.entries(spec.flags)) {
    if (flag.hidden) continue;
    const word = flag.type === 'string' ? `--${name} ${flag.value ?? 'VALUE'}` : `--${name}`;
    parts.push(flag.required ? word : `[${word}]${flag.multiple ? '...' : ''}`);
  }
  return wrap(parts, USAGE_WIDTH, ' '.repeat(`natpunch ${spec.name} `.length));
}

/** Usage lines longer than this are wrapped, continuation lines indented under the first flag. */
const USAGE_WIDTH = 110;

function wrap(words: readonly string[], width: number, indent: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = indent + word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines.join('\n');
}

/** `usage: natpunch …`, continuation lines indented under the first flag. */
export function usageText(spec: CommandSpec): string {
  return `usage: ${usageLine(spec).replace(/\n/g, '\n       ')}`;
}

/** The whole `--help` text: usage, summary, every flag with its meaning, default and example. */
export function helpText(spec: CommandSpec): string {
  const lines = [usageText(spec), '', spec.summary, '', 'flags:'];
  for (const [name, flag] of Object.entries(spec.flags)) {
    const head = flag.type === 'string' ? `--${name} ${flag.value ?? 'VALUE'}` : `--${name}`;
    lines.push(`  ${head}${flag.multiple ? ' (repeatable)' : ''}${flag.required ? ' (required)' : ''}`);
    lines.push(`      ${flag.help}`);
    if (fallback(flag) !== undefined) lines.push(`      default: ${fallback(flag)}`);
    if (flag.example) lines.push(`      e.g. ${flag.example}`);
  }
  if (spec.notes?.length) lines.push('', ...spec.notes);
  if (spec.examples?.length) lines.push('', 'examples:', ...spec.examples.map((e) => `  ${e}`));
  lines.push('', 'Exit codes: 0 ok, 1 runtime failure, 2 usage error.');
  return lines.join('\n');
}

/** The default as help shows it: its text, its value, "off" for a switch, "none" for an optional value (nothing for a required one). */
export function fallback(flag: Flag): string | undefined {
  if (flag.required) return undefined;
  return flag.defaultText ?? (typeof flag.default === 'string' ? flag.default : flag.type === 'boolean' ? 'off' : 'none');
}

export function integer(command: string, name: string, value: string | undefined, fallback: number, min = 0, max = 65535): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`natpunch ${command}: --${name} ${JSON.stringify(value)} is not a whole number from ${min} to ${max}`);
  }
  return n;
}

/** Run an ad-hoc parser (subcommands not yet declared by a spec), its errors as UsageErrors. */
export function usageErrors<T>(command: string, parser: () => T): T {
  try {
    return parser();
  } catch (error) {
    // No spec to suggest flags from: an empty one (positionals: '' says "may take some").
    const noSpec: CommandSpec = { name: command, summary: '', flags: {}, positionals: '' };
    throw new UsageError(`natpunch ${command}: ${parserMessage(error as Error, noSpec)}; run 'natpunch help' for usage`);
  }
}
