import { SandboxError } from '../errors.ts';

/**
 * Hands out slots one at a time, first come first served. A job holds its
 * slot from compile to its last run, so that every step of the job runs as
 * the same host uids over the same workspace. Of the free slots, one whose
 * next sandbox is already prepared goes first (the most recently freed of
 * those), so a slot still preparing after its last step is left to finish.
 */
export class SlotPool<T> {
  private readonly free: T[];
  private readonly waiters: ((slot: T) => void)[] = [];
  private closed = false;

  constructor(
    slots: T[],
    private readonly isReady: (slot: T) => boolean = () => true,
  ) {
    this.free = [...slots];
  }

  get size(): number {
    return this.free.length;
  }

  acquire(signal?: AbortSignal): Promise<T> {
    if (this.closed) return Promise.reject(new SandboxError('runtime_closed', 'the runtime is shutting down'));
    const slot = this.takeFree();
    if (slot !== undefined) return Promise.resolve(slot);
    return new Promise((resolve, reject) => {
      const waiter = (s: T) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(s);
      };
      const onAbort = () => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  release(slot: T): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(slot);
    else this.free.push(slot);
  }

  close(): void {
    this.closed = true;
  }

  private takeFree(): T | undefined {
    for (let i = this.free.length - 1; i >= 0; i--) if (this.isReady(this.free[i]!)) return this.free.splice(i, 1)[0];
    return this.free.pop();
  }
}
