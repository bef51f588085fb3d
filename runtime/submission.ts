import { posix } from 'node:path';
import { RequestError, SandboxError } from './errors.ts';
import { expandCommand, type LanguageProfile } from './languages/profile.ts';
import { type Limits, resolveLimits } from './limits.ts';
import type { StepResult } from './result.ts';
import type { Runtime, Slot } from './runtime.ts';
import { runStep, type StepTimings } from './sandbox/step.ts';
import type { TakenSandbox } from './slots/warm.ts';
import { mbToBytes } from './units.ts';
import type { SubmissionFile } from './workspace/files.ts';
import { Workspace } from './workspace/workspace.ts';

/** The environment every program starts with. Nothing of the service's own leaks in. */
const BASE_ENV: Record<string, string> = {
  PATH: '/usr/local/bin:/usr/bin:/bin',
  HOME: '/tmp',
  LANG: 'C.UTF-8',
  LC_ALL: 'C.UTF-8',
  TMPDIR: '/tmp',
};
const BOX = '/box';

/** Each language's step environment, merged once: the same object every step, so goWords can reuse its words. */
const stepEnvs = new WeakMap<LanguageProfile, Readonly<Record<string, string>>>();

function stepEnv(language: LanguageProfile): Readonly<Record<string, string>> {
  let env = stepEnvs.get(language);
  if (!env) {
    env = Object.freeze({ ...BASE_ENV, ...language.env });
    stepEnvs.set(language, env);
  }
  return env;
}

export interface SubmissionSpec {
  language: string;
  files: SubmissionFile[];
  /** Which file is the entry point; default: the first. */
  main?: string;
  args?: string[];
  /** What the request asks of the run steps; the rest comes from the language and the server. */
  limits?: Partial<Limits>;
  signal?: AbortSignal;
  /** Told after each step that ran its program: how long the program waited, and whether its sandbox was prepared ahead. */
  onStepTimings?: (timings: StepTimings & { warm: boolean }) => void;
}

/** What a run step may say besides its input. */
export interface RunOptions {
  /** Default: the submission's run limits. */
  limits?: Limits;
  /**
   * The submission's last step: nothing runs over the workspace after it,
   * so it gets the workspace itself, read-write, as a compile does, instead
   * of an overlay over it (whose mount, ~0.1 ms, is on the step's path). What
   * it writes in /box then shares the workspace's size with the submitted
   * files and the compile's output. Taken only when the step's disk limit is
   * the workspace's size; a step after it is refused.
   */
  last?: boolean;
}

/**
 * One submission: a slot, a workspace holding its files, an optional compile
 * step, then any number of run steps, each in a fresh sandbox over the same
 * compiled workspace (judge mode runs every test this way). Always close().
 */
export class Submission {
  readonly runLimits: Limits;
  /** Null for a language without a compile step. */
  readonly compileLimits: Limits | null;
  private closed = false;
  /** A step said it was the last: the workspace is no longer the one every run starts from. */
  private ended = false;

  private constructor(
    private readonly runtime: Runtime,
    private readonly slot: Slot,
    private readonly workspace: Workspace,
    private readonly workspaceMb: number,
    readonly language: LanguageProfile,
    private readonly spec: SubmissionSpec,
    private readonly main: string,
    limits: { run: Limits; compile: Limits | null },
  ) {
    this.runLimits = limits.run;
    this.compileLimits = limits.compile;
  }

  static async open(runtime: Runtime, spec: SubmissionSpec): Promise<Submission> {
    const language = runtime.language(spec.language);
    if (spec.files.length === 0) throw new RequestError('files_empty', 'a submission needs at least one file', { field: 'files' });
    const main = spec.main ?? spec.files[0]!.name;
    if (!spec.files.some((f) => f.name === main))
      throw new RequestError('main_missing', `the entry file ${JSON.stringify(main)} is not among the files`, { field: 'main' });
    const base = runtime.limitsOf(language);
    const limits = { run: resolveLimits(spec.limits, base.run, runtime.config.maxima), compile: base.compile };
    const slot = await runtime.pool.acquire(spec.signal);
    try {
      const workspaceMb = Math.max(limits.run.diskMb, limits.compile?.diskMb ?? 0);
      const workspace = Workspace.create({
        mountPoints: slot.mountPoints,
        sizeBytes: mbToBytes(workspaceMb),
        ownerUid: slot.lease.userHostId,
        ownerGid: slot.lease.userHostId,
        files: spec.files,
      });
      return new Submission(runtime, slot, workspace, workspaceMb, language, spec, main, limits);
    } catch (error) {
      runtime.pool.release(slot);
      throw error;
    }
  }

  /** Compiles in a sandbox that may write the workspace; null for interpreted languages. */
  async compile(): Promise<StepResult | null> {
    this.refuseAfterLast();
    if (!this.language.compile || !this.compileLimits) return null;
    return this.step(this.language.compile, 'rw', Buffer.alloc(0), this.compileLimits, []);
  }

  /** Runs the program in a fresh sandbox over the (compiled) workspace; writes vanish with it, unless it is the last step. */
  async run(stdin: Buffer, options: RunOptions = {}): Promise<StepResult> {
    return this.runStep(this.language.run, stdin, options, this.spec.args ?? []);
  }

  /** Runs an arbitrary command of the image over the workspace (e.g. the language's version command). */
  async runCommand(argv: string[], stdin: Buffer, options: RunOptions = {}): Promise<StepResult> {
    return this.runStep(argv, stdin, options, []);
  }

  private async runStep(template: string[], stdin: Buffer, options: RunOptions, args: string[]): Promise<StepResult> {
    const submittedAt = process.hrtime.bigint();
    this.refuseAfterLast();
    const limits = options.limits ?? this.runLimits;
    this.ended = options.last === true;
    const whole = this.ended && limits.diskMb === this.workspaceMb;
    return this.step(template, whole ? 'rw' : 'overlay', stdin, limits, args, submittedAt);
  }

  /** A step after the last one is the caller's bug, not a request's: a plain Error. */
  private refuseAfterLast(): void {
    if (this.ended) throw new Error('a submission runs nothing after its last step');
  }

  private async step(
    template: string[],
    mode: 'rw' | 'overlay',
    stdin: Buffer,
    limits: Limits,
    args: string[],
    submittedAt = process.hrtime.bigint(),
  ): Promise<StepResult> {
    const sources = this.spec.files.map((f) => f.name).filter((n) => this.language.extensions.includes(posix.extname(n).toLowerCase()));
    const argv = [...expandCommand(template, { main: this.main, sources, memoryMb: limits.memoryMb }), ...args];
    const { runtime, slot, spec } = this;
    const stepSpec = {
      box: { dir: this.workspace.dir, mode },
      cwd: BOX,
      env: stepEnv(this.language),
      argv,
      limits,
      stdin,
      signal: spec.signal,
      submittedAt,
    };
    const inSandbox = async ({ sandbox, warm }: TakenSandbox) => {
      try {
        return await runStep(
          sandbox,
          stepSpec,
          runtime.config.cpuQuotaCores,
          spec.onStepTimings && ((timings) => spec.onStepTimings!({ ...timings, warm })),
        );
      } finally {
        // The launcher may still be ending the sandbox's mount namespace.
        runtime.inBackground(sandbox.exited);
      }
    };
    try {
      const taken = await slot.sandbox.take();
      try {
        return await inSandbox(taken);
      } catch (error) {
        // A prepared sandbox can die while it waits (killed from outside)
        // between take() and the go-ahead. Nothing of the program ran: the
        // step gets one sandbox built for it, as if none had been prepared.
        if (!taken.warm || !diedBeforeStart(error)) throw error;
        return await inSandbox(await slot.sandbox.take());
      }
    } finally {
      // The step's sandbox is gone (its cgroup is empty): the slot prepares
      // its next one once the launcher has ended its mount namespace.
      slot.sandbox.refill();
    }
  }

  /**
   * Idempotent: gives the slot back and drops the workspace in the
   * background (Runtime.settled() waits for that; Runtime.close() does, and
   * so does the slot's next step).
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.slot.sandbox.afterWorkspace(this.runtime.releaseInBackground(this.workspace));
    this.runtime.pool.release(this.slot);
  }
}

/** The step's sandbox ended before its program started, by a kill or a launcher that died. */
function diedBeforeStart(error: unknown): boolean {
  return error instanceof SandboxError && (error.code === 'sandbox_killed_before_start' || error.code === 'sandbox_setup_failed');
}

export interface SubmissionResult {
  compile: StepResult | null;
  run: StepResult | null;
}

/** Compile (when the language has a step for it), then run once if that succeeded. */
export async function runSubmission(runtime: Runtime, spec: SubmissionSpec, stdin: Buffer): Promise<SubmissionResult> {
  const job = await Submission.open(runtime, spec);
  try {
    const compile = await job.compile();
    if (compile && compile.verdict !== 'ok') return { compile, run: null };
    return { compile, run: await job.run(stdin, { last: true }) };
  } finally {
    job.close();
  }
}
