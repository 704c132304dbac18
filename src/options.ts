/**
 * `{ ...defaults, ...options }`, except that an option given as `undefined` keeps its default
 * (a caller passing `{ limit: flags.limit }` means "not set", not "no limit").
 */
export function withDefaults<D extends object, O extends object>(defaults: D, options: O): D & O {
  const given = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
  return { ...defaults, ...given } as D & O;
}
