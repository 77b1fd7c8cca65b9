/**
 * Structured logs: one JSON object per line on stderr. Callers pass only what is safe to
 * keep: never tokens, authorization headers, context bytes, code or sub-call text.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type Logger = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(minimum: LogLevel = 'info', write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  return (level, msg, fields) => {
    if (ORDER[level] < ORDER[minimum]) return;
    write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
  };
}

/** The first characters of an id: enough to follow a sandbox in the logs, not to use it. */
export function shortId(id: string): string {
  return id.slice(0, 8);
}
