import type { Logger } from './logger.ts';

/**
 * What a failed Redis command says about the store, as opposed to a bug of
 * ours: 'unavailable' when Redis cannot be reached or cannot serve (down,
 * loading its append-only file, a read-only replica, a failed disk), 'full'
 * when it refuses writes over maxmemory (policy noeviction). Anything else
 * is null: a real failure, answered as one.
 */
export type StoreFault = 'unavailable' | 'full';

/** ioredis's own errors when a command cannot reach the server. */
const UNREACHABLE_ERROR_NAMES = new Set(['MaxRetriesPerRequestError', 'AbortError', 'ClusterAllFailedError']);
const UNREACHABLE_MESSAGES = [
  'Connection is closed',
  "Stream isn't writeable",
  'connect ETIMEDOUT',
  'Command timed out',
  'Reached the max retries per request limit',
];
const SOCKET_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOENT',
]);
/** Reply prefixes of a server that is there but cannot serve us now. */
const UNAVAILABLE_REPLIES = ['LOADING', 'READONLY', 'MISCONF', 'MASTERDOWN', 'BUSY', 'CLUSTERDOWN', 'TRYAGAIN'];
const FULL_REPLY = 'OOM';

export function storeFault(error: unknown): StoreFault | null {
  if (!(error instanceof Error)) return null;
  // A MULTI that Redis discarded (EXECABORT) says why in the errors of its commands.
  const previous = (error as { previousErrors?: unknown }).previousErrors;
  if (Array.isArray(previous)) {
    for (const cause of previous) {
      const fault = storeFault(cause);
      if (fault) return fault;
    }
  }
  const message = error.message;
  if (message.startsWith(FULL_REPLY) || message.includes(`${FULL_REPLY} command not allowed`)) return 'full';
  if (UNAVAILABLE_REPLIES.some((prefix) => message.startsWith(prefix))) return 'unavailable';
  if (UNREACHABLE_ERROR_NAMES.has(error.name)) return 'unavailable';
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== undefined && SOCKET_ERROR_CODES.has(code)) return 'unavailable';
  if (UNREACHABLE_MESSAGES.some((text) => message.includes(text))) return 'unavailable';
  return null;
}

/**
 * One structured log line when a Redis connection goes down and one when it
 * is back, however many reconnect attempts and errors lie between: an
 * outage of a minute must not write thousands of lines.
 */
export class OutageLog {
  private down = false;

  constructor(
    private readonly logger: Logger,
    private readonly connection: string,
  ) {}

  failed(error: unknown): void {
    if (this.down) return;
    this.down = true;
    this.logger.warn({ err: error, connection: this.connection }, 'redis unreachable: commands fail until it is back');
  }

  recovered(): void {
    if (!this.down) return;
    this.down = false;
    this.logger.info({ connection: this.connection }, 'redis reachable again');
  }
}
