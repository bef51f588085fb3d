import pino, { type Logger } from 'pino';

/** Structured JSON logs on stdout; child loggers carry reqId and runId. */
export function createLogger(opts: { level: string; name: string }): Logger {
  return pino({ name: opts.name, level: opts.level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}

export type { Logger };
