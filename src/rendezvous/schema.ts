/**
 * A tiny structural validator for JSON messages: each check takes a value and the path it sits
 * at, and returns the value typed or throws RendezvousProtocolError ('invalid') saying where,
 * what was expected and what was got (`connect.intent.sig: expected base64 of 64 bytes, got
 * a string of 12 characters`). Objects come back rebuilt from their known fields only, so
 * nothing unvalidated (extra keys, `__proto__`) reaches the code that uses them.
 */
import { RendezvousProtocolError } from './errors.js';

export type Check<T> = (value: unknown, path: string) => T;

/** The fields of T, each with its check. Optional fields take `optional(...)`. */
export type Shape<T> = { [K in keyof T]-?: Check<T[K]> };

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  switch (typeof value) {
    case 'string':
      return `a string of ${value.length} characters`;
    case 'number':
      return Number.isFinite(value) ? `the number ${value}` : String(value);
    case 'boolean':
      return String(value);
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

export function invalid(path: string, expected: string, got: unknown): never {
  return invalidAs(path, expected, describe(got));
}

/** As `invalid`, with what was got already put in words (`"8 ports (1..8)"`). */
export function invalidAs(path: string, expected: string, got: string): never {
  throw new RendezvousProtocolError('invalid', `${path}: expected ${expected}, got ${got}`);
}

export function string(options: { min?: number; max: number; pattern?: RegExp; expected?: string }): Check<string> {
  const min = options.min ?? 0;
  const expected = options.expected ?? `a string of ${min}-${options.max} characters`;
  return (value, path) => {
    if (typeof value !== 'string' || value.length < min || value.length > options.max) invalid(path, expected, value);
    if (options.pattern && !options.pattern.test(value)) invalid(path, expected, value);
    return value;
  };
}

export function integer(min: number, max: number): Check<number> {
  return (value, path) => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
      invalid(path, `an integer in ${min}..${max}`, value);
    }
    return value;
  };
}

export const boolean: Check<boolean> = (value, path) => {
  if (typeof value !== 'boolean') invalid(path, 'true or false', value);
  return value as boolean;
};

export function literal<T extends string | number | boolean>(...values: T[]): Check<T> {
  const expected = values.map((v) => JSON.stringify(v)).join(' or ');
  return (value, path) => {
    if (!values.includes(value as T)) invalid(path, expected, value);
    return value as T;
  };
}

export function nullable<T>(check: Check<T>): Check<T | null> {
  return (value, path) => (value === null ? null : check(value, path));
}

/** A field that may be absent (or explicitly undefined); present values must pass `check`. */
export function optional<T>(check: Check<T>): Check<T | undefined> {
  return (value, path) => (value === undefined ? undefined : check(value, path));
}

export function array<T>(item: Check<T>, options: { max: number; min?: number }): Check<T[]> {
  const min = options.min ?? 0;
  return (value, path) => {
    if (!Array.isArray(value) || value.length < min || value.length > options.max) {
      invalid(path, `an array of ${min}-${options.max} items`, value);
    }
    return value.map((v, i) => item(v, `${path}[${i}]`));
  };
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function object<T>(shape: Shape<T>): Check<T> {
  const keys = Object.keys(shape) as (keyof T & string)[];
  return (value, path) => {
    if (!isPlainObject(value)) invalid(path, 'an object', value);
    const out: Partial<T> = {};
    for (const key of keys) {
      const field = Object.hasOwn(value, key) ? value[key] : undefined;
      const checked = shape[key](field, `${path}.${key}`);
      if (checked !== undefined) out[key] = checked;
    }
    return out as T;
  };
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Standard base64 (RFC 4648 §4, padded) of `length` bytes, or of min..max bytes. Only the
 * canonical spelling passes (no stray bits in the last character), so one byte string has one
 * text form and signatures cannot be varied cosmetically.
 */
export function base64(length: number | { min?: number; max: number }): Check<string> {
  const { min, max } = typeof length === 'number' ? { min: length, max: length } : { min: length.min ?? 0, max: length.max };
  const expected = min === max ? `base64 of ${min} bytes` : `base64 of ${min}-${max} bytes`;
  return (value, path) => {
    if (typeof value !== 'string' || value.length > Math.ceil(max / 3) * 4 || !BASE64.test(value)) invalid(path, expected, value);
    const bytes = Buffer.from(value, 'base64');
    if (bytes.length < min || bytes.length > max || bytes.toString('base64') !== value) invalid(path, expected, value);
    return value;
  };
}

/** Unpadded base64url (RFC 4648 §5) of exactly `length` bytes, canonical spelling only. */
export function base64url(length: number): Check<string> {
  const chars = Math.ceil((length * 4) / 3);
  const expected = `base64url of ${length} bytes`;
  return (value, path) => {
    if (typeof value !== 'string' || value.length !== chars || !BASE64URL.test(value)) invalid(path, expected, value);
    if (Buffer.from(value, 'base64url').toString('base64url') !== value) invalid(path, expected, value);
    return value;
  };
}
