import type { Job } from 'bullmq';
import type { JobLock } from '../shared/run-store.ts';

/**
 * The BullMQ lock of a job this worker processes. BullMQ keeps it at
 * `<prefix>:<queue>:<jobId>:lock` (its extendLock and moveToFinished
 * scripts build the key so: the job's key plus ':lock'), holding the token
 * the worker took the job with (the processor's token argument). While the
 * key holds that token the run is this worker's; once it does not, BullMQ's
 * stalled check may have handed the run to another worker, whose writes are
 * the newer ones.
 */
export function jobLock(job: Pick<Job, 'queueQualifiedName' | 'id'>, token: string): JobLock {
  return { key: `${job.queueQualifiedName}:${job.id}:lock`, token };
}

/** Which of the worker's steps found the lock gone. */
export type LockLostAt = 'running record' | 'requeued record' | 'final record' | 'lock renewal';

/**
 * The run is no longer this worker's: its lock expired or went to another
 * worker (a network partition longer than the lock, a stalled event loop).
 * Nothing of this worker's was written past that point; whoever holds the
 * lock now writes the run's record and gives back its admission.
 */
export class JobLockLost extends Error {
  readonly code = 'job_lock_lost';
  constructor(
    readonly runId: string,
    readonly at: LockLostAt,
  ) {
    super(`run ${runId}: this worker no longer holds the job's lock (found at the ${at}); another worker owns the run now`);
    this.name = 'JobLockLost';
  }
}
