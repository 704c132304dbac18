import { UsageError } from '../errors.js';

/** Run an argument parser (node:util parseArgs), turning its errors into UsageError (exit code 2). */
export function usageErrors<T>(command: string, parser: () => T): T {
  try {
    return parser();
  } catch (error) {
    throw new UsageError(`natpunch ${command}: ${(error as Error).message}. Run 'natpunch help' for usage.`);
  }
}

export function integer(command: string, name: string, value: string | undefined, fallback: number, min = 0, max = 65535): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`natpunch ${command}: --${name} ${JSON.stringify(value)} is not a whole number from ${min} to ${max}`);
  }
  return n;
}
