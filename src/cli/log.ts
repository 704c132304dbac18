/** A minimal leveled logger for the CLI (the library itself logs nothing: it uses util.debuglog). */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
const order: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
}

export function createLogger(prefix: string, level: LogLevel = 'info', write: (line: string) => void = (l) => process.stderr.write(l + '\n')): Logger {
  const at = (l: LogLevel) => (message: string): void => {
    if (order[l] <= order[level]) write(`${new Date().toISOString()} ${l.padEnd(5)} ${prefix}: ${message}`);
  };
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}

export function isLogLevel(value: string): value is LogLevel {
  return value in order;
}
