import type { Job as QueueJob } from 'bullmq';
import { BrigError, LanguageUnavailableError, RequestError, SandboxError } from '../../runtime/errors.ts';
import { isRunErrorCode, type RunErrorCode } from '../shared/errors.ts';

/**
 * How a run ends when the job throws instead of producing a verdict (its
 * verdict is then internal_error). Two kinds, never mixed: the job itself
 * could not run (refused: its code says why, and another attempt would fail
 * the same way), or Brig failed it (a sandbox fault: retried, counted, and
 * shown to the caller under one code, sandbox_failed, because the detailed
 * code and message name host paths and kernel details that are the
 * operator's business). A program's own outcome never comes here.
 */
export type RunFailure =
  | { kind: 'refused'; code: RunErrorCode; message: string }
  /** detail: the runtime's own code (cgroup_write_failed, sandbox_setup_failed, …), for the log and the metric label. */
  | { kind: 'brig'; code: RunErrorCode; detail: string; message: string };

const SANDBOX_FAILED_MESSAGE = "Brig could not run the sandbox; the run id finds the details in the worker's log";
/** Errors of our own code or of Redis get a generic message: the details go to the log, never to the caller. */
const WORKER_FAILED_MESSAGE = 'the worker failed unexpectedly while running the job; the details are in its log';

export function describeFailure(error: unknown): RunFailure {
  if (error instanceof RequestError || error instanceof LanguageUnavailableError) {
    return { kind: 'refused', code: isRunErrorCode(error.code) ? error.code : 'job_invalid', message: error.message };
  }
  if (error instanceof SandboxError || error instanceof BrigError) {
    return { kind: 'brig', code: 'sandbox_failed', detail: error.code, message: SANDBOX_FAILED_MESSAGE };
  }
  return { kind: 'brig', code: 'worker_failed', detail: 'worker_failed', message: WORKER_FAILED_MESSAGE };
}

/**
 * True when BullMQ will run the job again if the processor throws: the
 * attempts come from the job options the API added it with (RUN_JOB_ATTEMPTS).
 */
export function queueWillRetry(job: Pick<QueueJob, 'attemptsMade' | 'opts'>): boolean {
  return job.attemptsMade + 1 < (job.opts.attempts ?? 1);
}
