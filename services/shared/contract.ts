/**
 * The contract between the API and the workers: queue name, Redis keys, the
 * job payload, the run record and its events. Both sides import these and
 * nothing else of each other.
 *
 * Lifecycle of a run (id = RunId):
 *  1. API validates the request, admits it and writes the record
 *     {status: 'queued'} at keys.run(id) with the result TTL, in one script
 *     (admission.ts), and adds a BullMQ job (jobId = id, data = RunJobData)
 *     to QUEUE_NAME.
 *  2. A worker takes the job, sets {status: 'running', startedAt, progress}
 *     and writes it again at each step ('started', 'compiled', 'test' per
 *     test); each write publishes its signals on RUN_EVENTS_CHANNEL from
 *     the same script (run-store.ts), so an event is never heard before the
 *     record says it. Events carry a step's figures and verdict, never its
 *     output, and the running record's `progress` holds the same summaries,
 *     so a follower that joins late reads the state from the record. The
 *     worker writes the final record {status: 'done', verdict, compile,
 *     run | tests, finishedAt} once, with the outputs, releases the run's
 *     admission (see admission.ts) and publishes 'done' (with the record
 *     when it is small, FINAL_EVENT_RECORD_MAX_BYTES) or 'cancelled', all
 *     in the same step, then returns a RunOutcome (id, status, verdict: no
 *     output) as the job's return value. Each output is thus held in Redis
 *     once: in the record.
 *  3. The API follows runs through RUN_EVENTS_CHANNEL and the record; SSE
 *     and wait=true are built on that. Pub/sub keeps nothing for a
 *     subscriber that was away: the record, read again every few seconds
 *     while a run is followed, is the truth. Of BullMQ's own event stream
 *     (trimmed to EVENTS_MAX_LEN) the API reads only 'failed', in batches.
 *  4. Cancel: the API sets keys.cancel(id) (TTL) and publishes the id on
 *     CANCEL_CHANNEL. A waiting job is removed by the API and its record set
 *     to {status: 'cancelled'} (publishing 'cancelled'); an active one is
 *     aborted by the worker that holds it (which listens on CANCEL_CHANNEL,
 *     and checks keys.cancel(id) in the script that starts the run), which
 *     then writes {status: 'cancelled'}.
 *  5. A worker that dies mid-run loses its lock; BullMQ's stalled-job check
 *     hands the job to another worker, which runs it from the start. A
 *     worker that lost its lock without dying (cut off from Redis for
 *     longer than the lock) writes nothing more of the run: each of its
 *     record writes checks, in the same script, that the lock still holds
 *     its token.
 *
 * A record may go running → queued → running again (a shutdown hands a run
 * back, or a sandbox failure is retried, or its worker died), so 'started'
 * can repeat: the worker that hands a run back publishes 'requeued', and a
 * worker that starts a run an earlier attempt had started publishes
 * 'requeued' just before its 'started'. A cancelled active run completes its
 * BullMQ job with the cancelled record as the return value. BullMQ fails a
 * job by itself only when it stalled more than maxStalledCount times: the
 * record is then still 'running', and the API records internal_error with
 * code 'run_failed' (publishing 'done').
 */
import type { Limits } from '../../runtime/limits.ts';
import type { StepResult, Verdict as StepVerdict } from '../../runtime/result.ts';
import type { RunError } from './errors.ts';

export const QUEUE_NAME = 'brig-runs';
/** The workers' own queue of callback deliveries (services/worker/callbacks/): one job per run that asked for one. */
export const CALLBACK_QUEUE_NAME = 'brig-callbacks';
export const JOB_NAME = 'run';
export const CANCEL_CHANNEL = 'brig:cancel';
/** Every run's PublishedSignals, as JSON, published by the scripts that write its record. */
export const RUN_EVENTS_CHANNEL = 'brig:run-events';
/**
 * A final record up to this size (its JSON) rides in its 'done' signal, so
 * that a waiting request need not read it back; a larger one is read from
 * the record by the API processes that follow the run.
 */
export const FINAL_EVENT_RECORD_MAX_BYTES = 64 * 1024;
/** Jobs are added with this many attempts: a failed sandbox build is retried once; a program's outcome never is. */
export const RUN_JOB_ATTEMPTS = 2;
/**
 * BullMQ's event stream is trimmed to about this many entries. The API
 * reads its 'failed' entries as they come (queue-failures.ts); nothing
 * reads its history, and no entry holds an output, so a short stream loses
 * nothing.
 */
export const EVENTS_MAX_LEN = 1_000;

export const keys = {
  /** JSON RunRecord, with the result TTL. */
  run: (id: string) => `brig:run:${id}`,
  /** A long final record while its worker writes it in slices, before it is moved to keys.run(id) (run-store.ts). */
  stagedFinal: (id: string, lockToken: string) => `brig:run-staged:${id}:${lockToken}`,
  /** '1' when a cancel was asked for; TTL = the result TTL. */
  cancel: (id: string) => `brig:cancel:${id}`,
  /** JSON WorkerHeartbeat, with a short TTL renewed by the worker. */
  worker: (workerId: string) => `brig:worker:${workerId}`,
  /** SET of the ids of the workers that publish a heartbeat: how the API finds them without a SCAN (worker-registry.ts). */
  workers: 'brig:workers',
  /** Fixed-window rate limit counter. */
  rate: (subject: string, windowStart: number) => `brig:rate:${subject}:${windowStart}`,
  /** ZSET of a client's runs queued or running (member run id, score: when the entry goes stale, ms). */
  clientRuns: (client: string) => `brig:client:${client}`,
  /** HASH run id → bytes reserved in Redis for the run's worst case, while it is queued or running. */
  reservations: 'brig:admission:bytes',
  /** ZSET run id → when its reservation goes stale (ms): a run that vanished gives its bytes back. */
  reservationExpiry: 'brig:admission:expiry',
  /** The sum of the reservations, in bytes. */
  reservedTotal: 'brig:admission:total',
  /** Present (with a TTL) until the sum is next counted again from the reservations. */
  reservedRecount: 'brig:admission:recount',
};

export type CompareMode = 'exact' | 'trim' | 'tokens' | { float: number };

/** Byte fields travel base64-encoded so that any bytes survive JSON. */
export interface RunJobData {
  id: string;
  language: string;
  files: { name: string; contentBase64: string }[];
  stdinBase64: string;
  args: string[];
  limits: Partial<Limits>;
  /** Judge mode when non-empty: each test runs in a fresh sandbox from the one compiled workspace. */
  tests: { name: string; stdinBase64: string; expectedOutputBase64: string }[];
  compare: CompareMode;
  /** Who submitted it (services/api/runs/client.ts): the run counts against this client until it ends. */
  client: string;
  callbackUrl?: string;
  requestId?: string;
  /** ms since the epoch, when the API accepted the run. */
  createdAt: number;
}

export type RunStatus = 'queued' | 'running' | 'done' | 'cancelled';

/** A judged test: the step's own outcome, or wrong_answer when a clean run printed something else. */
export type TestVerdict = StepVerdict | 'wrong_answer';
/** A run as a whole: a test's or the step's verdict, compile_error, or internal_error when Brig failed it. */
export type RunVerdict = TestVerdict | 'compile_error' | 'internal_error';

/** A step as the API shows it: the runtime's StepResult (non-UTF-8 output comes base64 with *Encoding set). */
export type StepView = StepResult;

export interface TestView extends Omit<StepView, 'verdict'> {
  name: string;
  verdict: TestVerdict;
}

/** A step without its output: what progress events and a running record carry. */
export type StepSummary = Omit<StepView, 'stdout' | 'stderr' | 'stdoutEncoding' | 'stderrEncoding'>;
export type TestSummary = Omit<TestView, 'stdout' | 'stderr' | 'stdoutEncoding' | 'stderrEncoding'>;

/** How far a running run has got. */
export interface RunProgress {
  /** The worker that runs it. */
  workerId: string;
  /** Present once the compile step is over: its summary, or null for a language without one. */
  compile?: StepSummary | null;
  /** The tests judged so far, in order. */
  tests: TestSummary[];
}

export interface RunRecord {
  id: string;
  language: string;
  status: RunStatus;
  /** Null until the run is done. */
  verdict: RunVerdict | null;
  compile: StepView | null;
  /** Native mode. */
  run?: StepView | null;
  /** Judge mode. */
  tests?: TestView[];
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  /** Set when the verdict is internal_error: a code of RUN_ERROR_CODES (errors.ts) and a message for the caller. */
  error?: RunError;
  /** Only while running: the steps so far, without their output. */
  progress?: RunProgress;
}

/** A finished job's return value: enough to know the run ended, and how. The record holds the rest. */
export type RunOutcome = Pick<RunRecord, 'id' | 'status' | 'verdict'>;

export type RunEvent =
  | { type: 'queued'; id: string }
  | { type: 'started'; id: string; workerId: string }
  | { type: 'compiled'; id: string; compile: StepSummary | null }
  | { type: 'test'; id: string; index: number; test: TestSummary }
  | { type: 'done'; id: string; record: RunRecord }
  | { type: 'cancelled'; id: string };

/**
 * What RUN_EVENTS_CHANNEL carries: the RunEvents, but 'done' without its
 * record when the record is large (the follower reads it), and 'requeued'
 * when the run went back to the queue and will start over.
 */
export type PublishedSignal =
  | Exclude<RunEvent, { type: 'done' }>
  | { type: 'done'; id: string; record?: RunRecord }
  | { type: 'requeued'; id: string };

/** What each worker publishes at keys.worker(id) every HEARTBEAT_INTERVAL_MS. */
export interface WorkerHeartbeat {
  workerId: string;
  hostname: string;
  pid: number;
  slots: number;
  activeRuns: number;
  /** Only the languages whose toolchain this worker's image really has, with all the API needs to check a request. */
  languages: {
    name: string;
    displayName: string;
    version: string;
    /** The file a lone `source` goes into. */
    sourceFile: string;
    /** A run step's limits when the request asks for nothing. */
    limits: Limits;
    /** The compile step's limits; null for a language without one. */
    compileLimits: Limits | null;
    /** The most a request may ask for. */
    maxLimits: Limits;
  }[];
  startedAt: number;
  at: number;
}

export const HEARTBEAT_INTERVAL_MS = 2_000;
/** A worker whose heartbeat is older than this is gone. */
export const HEARTBEAT_TTL_MS = 10_000;
