import type { Readable } from 'node:stream';

/**
 * Collects stdout and stderr under one shared byte budget. The first byte past
 * the budget triggers onOverflow once (the runtime kills the sandbox); what
 * arrives after that is dropped, and the kept text is marked truncated.
 */
export class OutputCollector {
  private readonly chunks: { stdout: Buffer[]; stderr: Buffer[] } = { stdout: [], stderr: [] };
  private used = 0;
  truncated = false;

  constructor(
    private readonly limitBytes: number,
    private readonly onOverflow: () => void,
  ) {}

  attach(name: 'stdout' | 'stderr', stream: Readable): Promise<void> {
    stream.on('data', (chunk: Buffer) => this.take(name, chunk));
    return new Promise((resolve) => {
      stream.once('close', resolve);
      stream.once('error', () => resolve());
    });
  }

  private take(name: 'stdout' | 'stderr', chunk: Buffer): void {
    const room = this.limitBytes - this.used;
    if (chunk.length <= room) {
      this.chunks[name].push(chunk);
      this.used += chunk.length;
      return;
    }
    if (room > 0) this.chunks[name].push(chunk.subarray(0, room));
    this.used = this.limitBytes;
    if (!this.truncated) {
      this.truncated = true;
      this.onOverflow();
    }
  }

  /** What was kept, as it arrived: a 16 MiB output is never copied into one buffer (a copy held the event loop ~10 ms). */
  kept(name: 'stdout' | 'stderr'): readonly Buffer[] {
    return this.chunks[name];
  }
}
