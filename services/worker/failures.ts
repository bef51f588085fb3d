import type { Job as QueueJob } from 'bullmq';
import { BrigError, LanguageUnavailableError, RequestError, SandboxError } from '../../runtime/errors.ts';

/**
 * What a run that failed on Brig's side shows (verdict internal_error). A
 * program's own outcome never comes here: it is a verdict, not a failure.
 */
export interface RunFailure {
  code: string;
  message: string;
  /**
   * Whether another attempt may succeed: a sandbox that could not be built
   * (a flaky mount, a cgroup busy for a moment) may build on the next try; a
   * job that is invalid, or asks for a language this image lacks, never will.
   */
  retryable: boolean;
}

/** Errors of our own code or of Redis get a generic message: the details go to the log, never to the caller. */
const UNEXPECTED: Omit<RunFailure, 'retryable'> = { code: 'worker_failed', message: 'the worker failed unexpectedly while running the job; the details are in its log' };

/**
 * A failure of the sandbox or the host keeps its code, but not its message:
 * those name host paths (the workspace, cgroups, the state dir) and kernel
 * details that are the operator's business, not the caller's.
 */
function hostFailureMessage(code: string): string {
  return `Brig could not run the sandbox (${code}); the run id finds the details in the worker's log`;
}

export function describeFailure(error: unknown): RunFailure {
  if (error instanceof RequestError || error instanceof LanguageUnavailableError) {
    return { code: error.code, message: error.message, retryable: false };
  }
  if (error instanceof SandboxError || error instanceof BrigError) return { code: error.code, message: hostFailureMessage(error.code), retryable: true };
  return { ...UNEXPECTED, retryable: true };
}

/**
 * True when BullMQ will run the job again if the processor throws: the
 * attempts come from the job options the API added it with (RUN_JOB_ATTEMPTS).
 */
export function queueWillRetry(job: Pick<QueueJob, 'attemptsMade' | 'opts'>): boolean {
  return job.attemptsMade + 1 < (job.opts.attempts ?? 1);
}
