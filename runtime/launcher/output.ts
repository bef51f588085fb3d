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

  bytes(name: 'stdout' | 'stderr'): Buffer {
    return Buffer.concat(this.chunks[name]);
  }
}
