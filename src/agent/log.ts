/**
 * The agent's log lines on stderr: `text` for a terminal (`<time> <LEVEL> <msg> key=value …`), `json` for journald and
 * log shippers (one object per line: {time, level, msg, fields}). stdout stays the reconcile records (-o).
 */
export type LogFormat = 'text' | 'json'
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json']
export type LogLevel = 'info' | 'warn' | 'error'
export type LogFields = Record<string, string | number | boolean | null | undefined>

export interface Logger {
  info(msg: string, fields?: LogFields): void
  warn(msg: string, fields?: LogFields): void
  error(msg: string, fields?: LogFields): void
}

/** One line, newline included. Pure: exported for tests. */
export function formatLogLine(
  format: LogFormat,
  level: LogLevel,
  msg: string,
  fields: LogFields = {},
  now = new Date(),
): string {
  const defined = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined))
  if (format === 'json') return `${JSON.stringify({time: now.toISOString(), level, msg, fields: defined})}\n`
  const kv = Object.entries(defined).map(
    ([k, v]) => `${k}=${typeof v === 'string' && /[\s"=]/.test(v) ? JSON.stringify(v) : String(v)}`,
  )
  return `${now.toISOString()} ${level.toUpperCase()} ${msg}${kv.length > 0 ? ` ${kv.join(' ')}` : ''}\n`
}

export function createLogger(
  format: LogFormat,
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger {
  const at = (level: LogLevel) => (msg: string, fields?: LogFields) => write(formatLogLine(format, level, msg, fields))
  return {info: at('info'), warn: at('warn'), error: at('error')}
}
