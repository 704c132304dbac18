/** The loader hooks of module-trace.ts (node:module register). */
import { appendFileSync } from 'node:fs';

interface Resolved { url: string }
type NextResolve = (specifier: string, context: unknown) => Promise<Resolved>;

export async function resolve(specifier: string, context: unknown, next: NextResolve): Promise<Resolved> {
  const resolved = await next(specifier, context);
  const file = process.env['NATPUNCH_MODULE_TRACE'];
  if (file) appendFileSync(file, `${resolved.url}\n`);
  return resolved;
}
