import type { PreparedSandbox } from '../sandbox/prepared.ts';

export interface WarmOptions {
  /** Prepare the next sandbox as soon as a step ends (BRIG_WARM_SLOTS). */
  warm: boolean;
  /** A prepared sandbox unused this long is discarded and prepared anew (BRIG_PREPARED_MAX_AGE_MS). */
  maxAgeMs: number;
}

export interface TakenSandbox {
  sandbox: PreparedSandbox;
  /** It was ready before the step asked for it: the step paid nothing of its building. */
  warm: boolean;
}

/**
 * The next sandbox of one slot. A step takes it (or waits for the one being
 * prepared, or has one built on its own path when there is none); once the
 * step's sandbox is gone, refill() prepares the next, so that the kernel's
 * slow parts (namespaces, id maps, the cgroup join and its RCU wait, the
 * mounts) happen between requests. Every sandbox runs one step and is never
 * reused: this holds the next one, not the last.
 *
 * A preparation that fails is not retried in the background: the next take()
 * builds one on the request's path, and a failure there fails the step as it
 * always did. A prepared sandbox that died while waiting (killed from outside)
 * is discarded at take(); one left unused for maxAgeMs is discarded and
 * prepared anew.
 */
export class SlotSandbox {
  /** Being prepared, or prepared and waiting. */
  private pending: Promise<PreparedSandbox> | null = null;
  private ready: PreparedSandbox | null = null;
  /**
   * What of earlier steps and jobs still holds the slot's cgroup: the
   * launchers of the sandboxes handed out (handOut), a discarded sandbox, the
   * last job's workspace (afterWorkspace). The next sandbox is prepared, and
   * the next step starts, only once all of it is gone.
   */
  private settling: Promise<void> = Promise.resolve();
  private ageTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly prepare: () => Promise<PreparedSandbox>,
    private readonly options: WarmOptions,
  ) {}

  /** A prepared sandbox is waiting: a step taking this slot now pays only for itself. */
  get isReady(): boolean {
    return this.ready !== null;
  }

  /** The sandbox for the next step. Never the same one twice. */
  async take(): Promise<TakenSandbox> {
    await this.settling;
    const pending = this.pending;
    const warm = this.ready !== null;
    this.forget();
    if (pending) {
      const sandbox = await pending.catch(() => null);
      if (sandbox && !sandbox.status.pending) return this.handOut(sandbox, warm);
      if (sandbox) await sandbox.discard();
    }
    return this.handOut(await this.prepare(), false);
  }

  /**
   * The slot's next step starts once the last submission's workspace is
   * gone, never before: what a compile (or the job's last run) wrote there
   * is charged to the slot's cgroup until the workspace is unmounted, so a
   * step started earlier would have less than its memory limit, and its peak
   * counted above that leftover. The unmount takes about a millisecond (an
   * RCU wait), and is usually over while the next sandbox is still being
   * prepared: a step waits only when it finds a sandbox ready at once.
   */
  afterWorkspace(released: Promise<void>): void {
    this.settleAfter(released);
  }

  /**
   * The slot's next sandbox is neither prepared nor built until the launcher
   * of this one has exited: that exit ends this sandbox's mount namespace,
   * and with it its tmpfs mounts, whose files, inodes and dentries stay
   * charged to the slot's cgroup until then. A program that filled them left
   * the cgroup at its limit, and the next run would have started there.
   */
  private handOut(sandbox: PreparedSandbox, warm: boolean): TakenSandbox {
    this.settleAfter(sandbox.exited);
    return { sandbox, warm };
  }

  /** Adds work to what the slot's next sandbox and step wait for; its failure is not theirs. */
  private settleAfter(work: Promise<unknown>): void {
    this.settling = Promise.all([this.settling, work.catch(() => {})]).then(() => {});
  }

  /**
   * Starts preparing the next sandbox, unless warm slots are off or one is
   * already there. Call once the last step's sandbox is gone (runStep returns
   * only when its cgroup is empty); the preparation itself waits for the
   * last sandbox's launcher (see handOut).
   */
  refill(): void {
    if (!this.options.warm || this.closed || this.pending) return;
    const pending = this.settling.then(() => this.prepare());
    this.pending = pending;
    pending.then(
      (sandbox) => {
        if (this.pending !== pending) return; // taken meanwhile: the taker has it
        this.ready = sandbox;
        this.ageTimer = setTimeout(() => this.expire(pending, sandbox), this.options.maxAgeMs);
        this.ageTimer.unref();
      },
      () => {
        if (this.pending === pending) this.pending = null; // the next take() builds one on its own path
      },
    );
  }

  /** Discards what is prepared and stops preparing; the slot's cgroup is empty once this resolves. */
  async close(): Promise<void> {
    this.closed = true;
    const pending = this.pending;
    this.forget();
    const sandbox = await pending?.catch(() => null);
    await sandbox?.discard();
    await this.settling;
  }

  private expire(pending: Promise<PreparedSandbox>, sandbox: PreparedSandbox): void {
    if (this.pending !== pending) return;
    this.forget();
    // Unlike settleAfter, a discard that failed fails the next preparation: the slot's cgroup may not be free.
    this.settling = Promise.all([this.settling, sandbox.discard()]).then(() => {});
    this.refill();
  }

  private forget(): void {
    clearTimeout(this.ageTimer);
    this.pending = null;
    this.ready = null;
  }
}
