import type { Readable } from 'node:stream';
import { parseStatusLine, type StatusEvent } from './protocol.ts';

export type StatusOrEof = StatusEvent | { kind: 'eof' };

/**
 * Reads the launcher's status lines (fd 5) as a queue of events, ending in
 * 'eof' once the launcher has closed the fd: once it has reaped the sandbox's
 * init (every process of the sandbox is gone then), or by exiting.
 */
export class StatusReader {
  private buffered = '';
  private readonly events: StatusOrEof[] = [];
  private waiter: ((event: StatusOrEof) => void) | null = null;
  /** Resolves when the stream has ended. */
  readonly closed: Promise<void>;

  constructor(stream: Readable) {
    stream.setEncoding('latin1');
    stream.on('data', (chunk: string) => {
      this.buffered += chunk;
      for (let newline = this.buffered.indexOf('\n'); newline >= 0; newline = this.buffered.indexOf('\n')) {
        const event = parseStatusLine(this.buffered.slice(0, newline));
        this.buffered = this.buffered.slice(newline + 1);
        if (event) this.push(event);
      }
    });
    this.closed = new Promise((resolve) => {
      const done = () => {
        this.push({ kind: 'eof' });
        resolve();
      };
      stream.once('close', done);
      stream.once('error', () => stream.destroy());
    });
  }

  /** Whether an event (or the end) arrived that next() has not returned yet. */
  get pending(): boolean {
    return this.events.length > 0;
  }

  /** The next event; 'eof' again and again once the stream has ended. */
  next(): Promise<StatusOrEof> {
    const event = this.events.shift();
    if (event) {
      if (event.kind === 'eof') this.events.unshift(event);
      return Promise.resolve(event);
    }
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  private push(event: StatusOrEof): void {
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = null;
      if (event.kind === 'eof') this.events.push(event);
      waiter(event);
    } else {
      this.events.push(event);
    }
  }
}
