import pino, { type DestinationStream, type Logger } from 'pino';

export interface LoggerOptions {
  level: string;
  name: string;
  /**
   * How long a line below `warn` may wait to be written with others (0: each
   * line at once). Lines at `warn` and above are written at once, with those
   * waiting before them.
   */
  flushMs?: number;
  /** Where the lines go; stdout unless a test says otherwise. */
  fd?: number;
}

/** Structured JSON logs on stdout; child loggers carry reqId and runId. */
export function createLogger(opts: LoggerOptions): Logger {
  const out = pino.destination({ dest: opts.fd ?? 1, sync: true });
  const stream = opts.flushMs ? new LineBatch(out, opts.flushMs) : out;
  return pino({ name: opts.name, level: opts.level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, stream);
}

/**
 * A write(2) is most of what a log line costs here: after the event loop has
 * slept, one costs ~30 µs on this kind of VM, and a run logs four lines in
 * four different turns. So lines wait, for at most `flushMs`, and go out
 * together.
 *
 * A batch stays within PIPE_BUF bytes so that each write stays atomic on a
 * pipe (a container's stdout usually is one, possibly shared with a child such
 * as the private redis-server): a batch never interleaves with another
 * writer's bytes, as one line did not before.
 *
 * What is lost: lines of the last `flushMs` if the process is killed by a
 * signal it cannot handle (SIGKILL, a crash of node itself). A normal exit,
 * `process.exit()` and an uncaught exception all run the `exit` handler, which
 * writes what waits.
 */
export class LineBatch implements DestinationStream {
  // pino sets lastLevel before each write when the stream asks for it, as its
  // own multistream does: an error must not wait behind a timer.
  readonly [pino.symbols.needsMetadataGsym] = true;
  lastLevel = 0;
  private waiting: string[] = [];
  private waitingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly onTimer = () => this.flush();

  constructor(
    private readonly out: DestinationStream,
    private readonly flushMs: number,
  ) {
    if (!exitHandlerInstalled) {
      process.on('exit', () => {
        for (const batch of waitingAtExit) batch.flush();
      });
      exitHandlerInstalled = true;
    }
  }

  write(line: string): void {
    const bytes = Buffer.byteLength(line);
    if (this.waitingBytes + bytes > PIPE_BUF) this.flush();
    if (this.waiting.length === 0) waitingAtExit.add(this);
    this.waiting.push(line);
    this.waitingBytes += bytes;
    if (this.lastLevel >= WARN) this.flush();
    else this.timer ??= setTimeout(this.onTimer, this.flushMs).unref();
  }

  /** Writes what waits, now (pino's `logger.flush(cb)` calls it). */
  flush(cb?: (error?: Error) => void): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.waiting.length > 0) {
      waitingAtExit.delete(this);
      const batch = this.waiting.length === 1 ? this.waiting[0] : this.waiting.join('');
      this.waiting = [];
      this.waitingBytes = 0;
      this.out.write(batch);
    }
    cb?.();
  }
}

/**
 * The batches with lines waiting, written by one `exit` handler. A batch is
 * in it only while it has lines to write, so the handler keeps no dropped
 * logger alive.
 */
const waitingAtExit = new Set<LineBatch>();
let exitHandlerInstalled = false;

/** Linux's PIPE_BUF: writes up to this size to a pipe are atomic. */
export const PIPE_BUF = 4096;
const WARN = pino.levels.values.warn;

export type { Logger };
