import type { Job as QueueJob } from 'bullmq';
import type { StepResult } from '../../runtime/result.ts';
import type { Runtime } from '../../runtime/runtime.ts';
import { Submission } from '../../runtime/submission.ts';
import { BYTES_PER_KB, MS_PER_S, NS_PER_MS } from '../../runtime/units.ts';
import { decodeUtf8 } from '../../runtime/utf8.ts';
import type { ServiceConfig } from '../shared/config.ts';
import type {
  PublishedSignal,
  RunEvent,
  RunJobData,
  RunOutcome,
  RunProgress,
  RunRecord,
  RunVerdict,
  StepView,
  TestVerdict,
  TestView,
} from '../shared/contract.ts';
import type { Logger } from '../shared/logger.ts';
import type { Metrics } from '../shared/metrics.ts';
import type { JobLock, RunStore } from '../shared/run-store.ts';
import { abortKind } from './active-runs.ts';
import type { CallbackQueue } from './callbacks/queue.ts';
import { compareOutput } from './compare.ts';
import { describeFailure, queueWillRetry } from './failures.ts';
import { JobLockLost } from './job-lock.ts';
import { summarizeStep, summarizeTest } from './progress.ts';

export type RunQueueJob = QueueJob<RunJobData, RunOutcome>;

export interface ProcessorContext {
  runtime: Runtime;
  store: RunStore;
  callbacks: CallbackQueue;
  serviceConfig: ServiceConfig;
  metrics: Metrics;
  logger: Logger;
  workerId: string;
}

/**
 * Thrown when this worker's shutdown aborted the run: the run is neither
 * done nor cancelled, and the job goes back to the queue for another worker.
 */
export class RunRequeued extends Error {
  constructor(readonly runId: string) {
    super(`run ${runId} was stopped by the worker's shutdown and goes back to the queue`);
    this.name = 'RunRequeued';
  }
}

/** What the steps produced so far; kept when the run ends early (cancel, internal error). */
interface RunParts {
  compile: StepView | null;
  run?: StepView | null;
  tests?: TestView[];
}

type Phase = 'queued' | 'setup' | 'compile' | 'run' | 'cleanup';

/**
 * Tells the followers of a run how far it has got: the running record (its
 * progress, for followers that join late) and the step's event (for those
 * listening), in one write, both with summaries only; outputs go into the
 * final record.
 */
type Report = (event: RunEvent, progress: RunProgress) => Promise<void>;

/** Marks the run started (record and events); false when a cancel came first, and the run must not start. */
type Started = (progress: RunProgress) => Promise<boolean>;

/**
 * One run, from the queue job to its final record. The order is the
 * contract's: running record and 'started' (once a sandbox slot is ours,
 * unless a cancel came first), the steps with their events, then the final
 * record written (once, with the outputs, announcing 'done') before the job
 * returns.
 *
 * A program's outcome is always a verdict, never a thrown error. Brig's own
 * failures become internal_error, unless BullMQ will retry the job (then the
 * error is thrown and the record goes back to queued).
 *
 * Every record write holds the job's lock (checked in the same script):
 * once it is lost, JobLockLost is thrown, the run stops, and nothing more
 * of it is written: the run belongs to whichever worker holds the lock now.
 */
export async function processRun(job: RunQueueJob, lock: JobLock, signal: AbortSignal, ctx: ProcessorContext): Promise<RunOutcome> {
  const data = job.data;
  const log = ctx.logger.child({ runId: data.id, reqId: data.requestId, attempt: job.attemptsStarted });
  const queued = queuedRecord(data);

  // The run is 'running' from the moment a sandbox slot and its workspace are
  // ours: a run whose workspace cannot be built never started.
  let current = queued;
  const report: Report = async (event, progress) => {
    if (!(await ctx.store.progress({ ...current, progress }, lock, event))) throw new JobLockLost(data.id, 'running record');
  };
  const started: Started = async (progress) => {
    const startedAt = Date.now();
    const running: RunRecord = { ...queued, status: 'running', startedAt };
    const signals: PublishedSignal[] = [];
    // An earlier attempt started it (its worker died, shut down, or failed on its side): its followers start over.
    if (job.attemptsStarted > 1) signals.push({ type: 'requeued', id: data.id });
    signals.push({ type: 'started', id: data.id, workerId: ctx.workerId });
    // A language without a compile step is as good as compiled from the start.
    if (progress.compile === null) signals.push({ type: 'compiled', id: data.id, compile: null });
    const outcome = await ctx.store.start({ ...running, progress }, lock, signals);
    if (outcome === 'lock_lost') throw new JobLockLost(data.id, 'running record');
    if (outcome === 'cancelled') return false;
    current = running;
    observePhase(ctx.metrics, 'queued', startedAt - data.createdAt);
    log.info({ language: data.language, tests: data.tests.length }, 'run started');
    return true;
  };

  const parts: RunParts = { compile: null };
  let ended: Pick<RunRecord, 'status' | 'verdict' | 'error'>;
  try {
    const verdict = await execute(data, signal, ctx, parts, report, started);
    if (verdict === null) {
      log.info('run cancelled before it started');
      return finish(job, lock, { ...queued, status: 'cancelled', finishedAt: Date.now() }, ctx, log);
    }
    ended = { status: 'done', verdict };
  } catch (error) {
    if (error instanceof JobLockLost) throw error;
    ended = await afterFailure(job, lock, error, signal, ctx, log);
  }
  return finish(job, lock, { ...current, ...parts, ...ended, finishedAt: Date.now() }, ctx, log);
}

/**
 * How a run that threw ends: cancelled, handed back to the queue (shutdown,
 * or a Brig failure BullMQ will retry: then this throws), or internal_error.
 */
async function afterFailure(
  job: RunQueueJob,
  lock: JobLock,
  error: unknown,
  signal: AbortSignal,
  ctx: ProcessorContext,
  log: Logger,
): Promise<Pick<RunRecord, 'status' | 'verdict' | 'error'>> {
  const aborted = abortKind(signal);
  if (aborted === 'cancel') {
    log.info('run cancelled while running');
    return { status: 'cancelled', verdict: null };
  }
  if (aborted === 'lock_lost') throw new JobLockLost(job.data.id, 'lock renewal');
  if (aborted === 'shutdown') {
    log.info('run stopped by shutdown: back to the queue');
    await requeue(job, lock, ctx);
    throw new RunRequeued(job.data.id);
  }
  const failure = describeFailure(error);
  // A refused job would fail the same way again; a sandbox fault may not, and is ours: counted apart.
  const retry = failure.kind === 'brig' && queueWillRetry(job);
  if (failure.kind === 'brig') {
    ctx.metrics.sandboxErrors.inc({ code: failure.detail });
    log.error({ err: error, code: failure.detail, retry }, 'run failed on the worker side');
  } else {
    ctx.metrics.jobsRefused.inc({ code: failure.code });
    log.warn({ err: error, code: failure.code }, 'job refused by the runtime');
  }
  if (retry) {
    await requeue(job, lock, ctx);
    throw error;
  }
  return { status: 'done', verdict: 'internal_error', error: { code: failure.code, message: failure.message } };
}

/** The record goes back to queued, for a run handed back to the queue. */
async function requeue(job: RunQueueJob, lock: JobLock, ctx: ProcessorContext): Promise<void> {
  if (!(await ctx.store.requeue(queuedRecord(job.data), lock))) throw new JobLockLost(job.data.id, 'requeued record');
}

/** The record as the API wrote it; a run handed back to the queue returns to it. */
function queuedRecord(data: RunJobData): RunRecord {
  return { id: data.id, language: data.language, status: 'queued', verdict: null, compile: null, createdAt: data.createdAt };
}

/**
 * Records the final state (giving the run's admission back and announcing
 * 'done' or 'cancelled' in the same write), counts it, and queues its
 * callback. The job's return value is only the outcome: BullMQ copies
 * return values into its event stream, and the outputs are stored once, in
 * the record.
 */
async function finish(job: RunQueueJob, lock: JobLock, final: RunRecord, ctx: ProcessorContext, log: Logger): Promise<RunOutcome> {
  const { progress: _progress, ...record } = final;
  if (!(await ctx.store.putFinal(record, lock))) throw new JobLockLost(record.id, 'final record');
  ctx.metrics.runs.inc({ language: record.language, verdict: record.verdict ?? record.status });
  log.info(
    { status: record.status, verdict: record.verdict, ms: (record.finishedAt ?? Date.now()) - (record.startedAt ?? record.createdAt) },
    'run finished',
  );
  // After the record is written: the delivery reads it from Redis when it sends.
  if (job.data.callbackUrl)
    await ctx.callbacks.enqueue({ runId: record.id, url: job.data.callbackUrl, requestId: job.data.requestId }, log);
  return { id: record.id, status: record.status, verdict: record.verdict };
}

async function execute(
  data: RunJobData,
  signal: AbortSignal,
  ctx: ProcessorContext,
  parts: RunParts,
  report: Report,
  started: Started,
): Promise<RunVerdict | null> {
  const { runtime, metrics } = ctx;
  const language = runtime.language(data.language);
  const files = data.files.map((f) => ({ name: f.name, content: fromBase64(f.contentBase64) }));

  // Submission.open waits for a free sandbox slot, then builds the workspace.
  const submission = await timed(metrics, 'setup', () =>
    Submission.open(runtime, {
      language: data.language,
      files,
      limits: data.limits,
      args: data.args,
      signal,
      onStepTimings: ({ submitToExecNs, warm }) => {
        if (submitToExecNs !== null) metrics.submitToExec.observe({ warm: String(warm) }, Number(submitToExecNs) / NS_PER_MS / MS_PER_S);
      },
    }),
  );
  try {
    // A language without a compile step is as good as compiled from the start:
    // the running record says so at once, one write fewer per run.
    const progress: RunProgress = language.compile
      ? { workerId: ctx.workerId, tests: [] }
      : { workerId: ctx.workerId, compile: null, tests: [] };
    // null: a cancel came before the start; the program never runs.
    if (!(await started(progress))) return null;
    const compile = await timed(metrics, 'compile', () => sandboxed(metrics, () => submission.compile()));
    parts.compile = compile;
    if (compile) {
      progress.compile = summarizeStep(compile);
      await report({ type: 'compiled', id: data.id, compile: progress.compile }, progress);
    }
    const judge = data.tests.length > 0;
    if (compile && compile.verdict !== 'ok') {
      if (judge) parts.tests = [];
      else parts.run = null;
      return 'compile_error';
    }
    if (!judge) {
      const run = await timed(metrics, 'run', () =>
        measuredRun(metrics, () => submission.run(fromBase64(data.stdinBase64), { last: true })),
      );
      parts.run = run;
      return run.verdict;
    }
    return await timed(metrics, 'run', async () => {
      const tests: TestView[] = [];
      parts.tests = tests;
      let verdict: RunVerdict = 'ok';
      for (const [index, test] of data.tests.entries()) {
        const last = index === data.tests.length - 1;
        const step = await measuredRun(metrics, () => submission.run(fromBase64(test.stdinBase64), { last }));
        const view: TestView = { ...step, name: test.name, verdict: testVerdict(step, test.expectedOutputBase64, data) };
        tests.push(view);
        const summary = summarizeTest(view);
        progress.tests.push(summary);
        await report({ type: 'test', id: data.id, index, test: summary }, progress);
        if (verdict === 'ok') verdict = view.verdict;
      }
      return verdict;
    });
  } finally {
    const cleanupStart = performance.now();
    submission.close();
    observePhase(metrics, 'cleanup', performance.now() - cleanupStart);
  }
}

/** A step that did not end well keeps its own verdict; a clean one is judged on its output. */
function testVerdict(step: StepResult, expectedBase64: string, data: RunJobData): TestVerdict {
  if (step.verdict !== 'ok') return step.verdict;
  const actual = step.stdoutEncoding === 'base64' ? fromBase64(step.stdout) : step.stdout;
  return compareOutput(actual, textOrBytes(fromBase64(expectedBase64)), data.compare ?? 'trim') ? 'ok' : 'wrong_answer';
}

/** Expected output as text when it is UTF-8; as bytes (compared byte for byte) when not. */
function textOrBytes(bytes: Buffer): string | Buffer {
  return decodeUtf8(bytes) ?? bytes;
}

function fromBase64(text: string): Buffer {
  return Buffer.from(text, 'base64');
}

async function timed<T>(metrics: Metrics, phase: Phase, fn: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await fn();
  } finally {
    observePhase(metrics, phase, performance.now() - start);
  }
}

function observePhase(metrics: Metrics, phase: Phase, ms: number): void {
  metrics.phaseDuration.observe({ phase }, Math.max(0, ms) / MS_PER_S);
}

async function sandboxed<T>(metrics: Metrics, fn: () => Promise<T>): Promise<T> {
  metrics.activeSandboxes.inc();
  try {
    return await fn();
  } finally {
    metrics.activeSandboxes.dec();
  }
}

/** A run step (not the compile): its CPU time and peak memory feed the per-step histograms. */
async function measuredRun(metrics: Metrics, fn: () => Promise<StepResult>): Promise<StepResult> {
  const step = await sandboxed(metrics, fn);
  metrics.runCpuSeconds.observe(step.cpuMs / MS_PER_S);
  metrics.runMemoryBytes.observe(step.memoryKb * BYTES_PER_KB);
  return step;
}
