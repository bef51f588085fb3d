import type { Limits } from '../../../runtime/limits.ts';
import type { RunJobData } from '../../shared/contract.ts';
import { ServiceError } from '../../shared/errors.ts';
import type { LanguageView } from '../../shared/schemas.ts';

/**
 * What one request may cost at worst, known before anything is queued: the
 * output bytes its steps may keep (the compile step's, and each test's or
 * the one run's at its outputBytes), and how long it may hold a sandbox slot
 * (run steps × wallMs). Both have a server maximum, so that one small
 * request cannot ask for gigabytes of Redis and heap, or a slot for hours.
 * A request over either is refused, never clamped.
 */
export interface RunWorstCase {
  runSteps: number;
  outputBytes: number;
  wallMs: number;
  /** Bytes Redis may have to hold for the run: see reservationBytes. */
  storeBytes: number;
}

/**
 * JSON of an output is at most twice its bytes: runtime/result.ts sends an
 * output as text only while its escapes add no more than its own size, and
 * base64 (4/3) otherwise.
 */
const OUTPUT_JSON_FACTOR = 2;
/** A step's figures, name and keys in the record, the running record and the progress event: generous. */
const STEP_OVERHEAD_BYTES = 2_048;
/** The record's own fields, the job's BullMQ fields, and its few events. */
const RUN_OVERHEAD_BYTES = 8_192;

/** `limits` are the run steps' limits, resolved (request over language). */
export function runWorstCase(job: RunJobData, language: LanguageView, limits: Limits, opts: { jobBytes: number }): RunWorstCase {
  const runSteps = Math.max(1, job.tests.length);
  const stepOutputBytes = limits.outputBytes;
  const stepWallMs = limits.wallMs;
  const compileOutputBytes = language.compileLimits?.outputBytes ?? 0;
  const outputBytes = compileOutputBytes + runSteps * stepOutputBytes;
  const steps = runSteps + (language.compileLimits ? 1 : 0);
  return {
    runSteps,
    outputBytes,
    wallMs: runSteps * stepWallMs,
    storeBytes: opts.jobBytes + OUTPUT_JSON_FACTOR * outputBytes + steps * STEP_OVERHEAD_BYTES + RUN_OVERHEAD_BYTES,
  };
}

export function checkRunBudget(job: RunJobData, worst: RunWorstCase, maxima: { maxRunOutputBytes: number; maxRunWallMs: number }): void {
  const steps = job.tests.length > 0 ? `${worst.runSteps} tests` : 'the run';
  if (worst.outputBytes > maxima.maxRunOutputBytes) {
    throw new ServiceError(
      'limit_over_maximum',
      `${steps} could keep ${worst.outputBytes} bytes of output (with the compiler's), over the server maximum of ${maxima.maxRunOutputBytes} bytes per run; lower limits.outputBytes or send fewer tests`,
      { field: 'limits.outputBytes' },
    );
  }
  if (worst.wallMs > maxima.maxRunWallMs) {
    throw new ServiceError(
      'limit_over_maximum',
      `${steps} could hold a sandbox for ${worst.wallMs} ms of wall time, over the server maximum of ${maxima.maxRunWallMs} ms per run; lower limits.wallMs or send fewer tests`,
      { field: 'limits.wallMs' },
    );
  }
}
