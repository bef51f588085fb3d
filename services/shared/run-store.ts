import { setTimeout as sleep } from 'node:timers/promises';
import { RELEASE_KEYS, releaseLua, releaseRun } from './admission.ts';
import {
  CANCEL_CHANNEL,
  FINAL_EVENT_RECORD_MAX_BYTES,
  keys,
  type PublishedSignal,
  RUN_EVENTS_CHANNEL,
  type RunRecord,
} from './contract.ts';
import type { RunError } from './errors.ts';
import { jsonOf } from './record-json.ts';
import { LuaScript, type Redis } from './redis.ts';
import { storeFault } from './store-errors.ts';

/**
 * The run records in Redis (keys.run(id)), the source of truth about a run,
 * and the one module that reads or writes them after they are created
 * (by the admission script: admission.ts). The API may move a record to a
 * final state (cancelled while still queued; internal_error when the job
 * failed without the worker writing one); the worker writes everything
 * else. Every change the API makes is a compare-and-set against the JSON it
 * read, so it never overwrites a record the worker changed in between.
 * Whoever makes a record final releases the run's admission in the same
 * script. The worker's writes take effect only while it holds the run's job
 * lock (see JobLock), checked in the same script. Each write publishes the
 * signals it stands for on RUN_EVENTS_CHANNEL from the same script: one
 * command per step, and no follower hears of a step before the record
 * holds it.
 */
const FINAL_STATUSES: ReadonlySet<RunRecord['status']> = new Set(['done', 'cancelled']);
/** A record longer than this is read back in slices of this size (RunStore.getBytes). */
export const READ_SLICE_BYTES = 1024 * 1024;
/** A final record longer than this is written in slices of this size (RunStore.putFinal). */
export const WRITE_SLICE_BYTES = 1024 * 1024;
/**
 * How long a final record's slices may wait for the script that puts them
 * in place: a worker writes them one after another, in seconds at most, so
 * this only bounds what a worker that died midway leaves behind.
 */
const STAGED_TTL_SECONDS = 300;
/** Writes of a final record's slices that vanished before they were moved in place, before the write fails. */
const MAX_STAGINGS = 3;
/** Attempts of a read-modify-write before giving up to a faster writer. */
const MAX_CAS_ATTEMPTS = 5;
/**
 * A final record refused for memory is tried again this often, up to this
 * many times: admission keeps room for every admitted run, so a refusal can
 * only be brief (another Redis client's writes), and records expire meanwhile.
 */
const FULL_RETRY_DELAYS_MS = [100, 250, 500, 1_000, 2_000, 4_000];

// Sets KEYS[1] to ARGV[2] only if it still holds ARGV[1]; keeps the key's TTL.
// With ARGV[4] = '1' the new record is final: the run's admission is released
// and ARGV[6] is published on ARGV[5].
const compareAndSet = new LuaScript(
  'compare-and-set',
  `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
if ARGV[4] == '1' then ${releaseLua(2, 'ARGV[3]')}
  redis.call('PUBLISH', ARGV[5], ARGV[6])
end
return 1
`,
);

// The worker's writes, each only while its job lock (KEYS[2], or KEYS[5] for the final one)
// still holds its token (ARGV[3], or ARGV[4]); 0 when it does not, and nothing is written.
// A record that is not final (KEYS[1]) with its TTL, then ARGV[6..] published on ARGV[5], in
// order. With ARGV[4] = '1', a run whose cancel was asked for (KEYS[3]) is not written: 2.
const writeHeld = new LuaScript(
  'write-held',
  `
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[3]) == 1 then return 2 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
for i = 6, #ARGV do redis.call('PUBLISH', ARGV[5], ARGV[i]) end
return 1
`,
);

// The final record (KEYS[1]) with its TTL, the run's admission released, and ARGV[6]
// published on ARGV[5].
const writeFinal = new LuaScript(
  'write-final',
  `
if redis.call('GET', KEYS[5]) ~= ARGV[4] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
${releaseLua(2, 'ARGV[3]')}
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
`,
);

// As write-final, for a record written beforehand in slices at KEYS[6]: it is moved in
// place when it holds all ARGV[1] bytes (else 3: an expired staging, nothing written), and
// dropped when the lock is lost. RENAME is never refused for memory.
const writeFinalStaged = new LuaScript(
  'write-final-staged',
  `
if redis.call('GET', KEYS[5]) ~= ARGV[4] then
  redis.call('DEL', KEYS[6])
  return 0
end
if redis.call('STRLEN', KEYS[6]) ~= tonumber(ARGV[1]) then return 3 end
redis.call('RENAME', KEYS[6], KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
${releaseLua(2, 'ARGV[3]')}
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
`,
);

/**
 * A BullMQ job's lock as the worker that processes it holds it: the key and
 * the worker's token (services/worker/job-lock.ts). A worker cut off from
 * Redis for longer than its lock keeps running the run while BullMQ's
 * stalled check hands it to another worker; when the link comes back, the
 * first worker's writes must not overwrite the new owner's record. Checked
 * in the same script as the write, so nothing can come between.
 */
export interface JobLock {
  key: string;
  token: string;
}

/** What became of a write the worker makes under its job lock. */
export type HeldWrite = 'written' | 'lock_lost' | 'cancelled';

/**
 * The signal that announces a final record: 'cancelled', or 'done' with the
 * record (as stored: its JSON is spliced in, not encoded again) when it is
 * at most FINAL_EVENT_RECORD_MAX_BYTES characters, else without it (a
 * record jsonOf gave as bytes, for its long strings, is always longer).
 */
function finalSignal(record: RunRecord, encoded: string | Buffer): string {
  if (record.status === 'cancelled') return JSON.stringify({ type: 'cancelled', id: record.id } satisfies PublishedSignal);
  if (typeof encoded !== 'string' || encoded.length > FINAL_EVENT_RECORD_MAX_BYTES)
    return JSON.stringify({ type: 'done', id: record.id } satisfies PublishedSignal);
  return `${doneEventHead(record.id)}${encoded}}`;
}

/**
 * A 'done' signal or event up to its record, whose JSON (as stored) follows,
 * then `}`: so a record is spliced in without being encoded again.
 */
export function doneEventHead(id: string): string {
  return `{"type":"done","id":${JSON.stringify(id)},"record":`;
}

/** A stored record for a follower: a done one as its bytes (see storedStatus), any other parsed. */
export type FollowedRecord = { done: Buffer } | { record: RunRecord };

/**
 * A stored record's head as every writer builds it: id, language and status
 * come first and in that order (the admission script stores the API's
 * queued record; the worker's and the API's later records spread an earlier
 * one, which keeps its keys' order). Read from the first bytes only, so the
 * status of a large final record is known without parsing its outputs.
 */
const RECORD_HEAD = /^\{"id":"[^"\\]{1,128}","language":"[^"\\]{1,64}","status":"([a-z]{1,16})"/;
const RECORD_HEAD_MAX_BYTES = 256;

/**
 * The status at the head of a stored record, or null when the head is not
 * as Brig writes it (then parse the record to know). A record with a raw
 * line break is never one Brig wrote (JSON.stringify escapes them): null,
 * so that no such bytes are passed on where a line break means something.
 */
export function storedStatus(stored: Buffer): RunRecord['status'] | null {
  const head = RECORD_HEAD.exec(stored.subarray(0, RECORD_HEAD_MAX_BYTES).toString('latin1'));
  if (!head || !STATUSES.has(head[1]!) || stored.includes(LF) || stored.includes(CR)) return null;
  return head[1] as RunRecord['status'];
}

const STATUSES: ReadonlySet<string> = new Set<RunRecord['status']>(['queued', 'running', 'done', 'cancelled']);
const LF = 0x0a;
const CR = 0x0d;

export function isFinal(record: RunRecord): boolean {
  return isFinalStatus(record.status);
}

export function isFinalStatus(status: RunRecord['status']): boolean {
  return FINAL_STATUSES.has(status);
}

export class RunStore {
  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds: number,
  ) {}

  async get(id: string): Promise<RunRecord | null> {
    const raw = await this.redis.get(keys.run(id));
    return raw === null ? null : (JSON.parse(raw) as RunRecord);
  }

  /**
   * The record as stored, as bytes, for an answer that sends it on
   * unchanged: neither parsed, stringified nor decoded. A final record holds
   * the outputs (up to the output budget, 16 MiB), and parsing and
   * stringifying one held the API's event loop for ~90 ms per read.
   *
   * Read READ_SLICE_BYTES at a time: ioredis gathers a reply's chunks and
   * copies them into one buffer when the last arrives, in one go (for 15 MiB,
   * a probe's longest event-loop gap: 22 ms with GET, 6 in slices). A record longer than a slice is a final one, which never
   * changes again, so its slices, read apart, are one record; if it expires
   * meanwhile, a slice comes back short and the record is gone. A long
   * record that is not final (or whose head is not as Brig writes records)
   * could change between slices: it is read whole.
   */
  async getBytes(id: string): Promise<Buffer | null> {
    const key = keys.run(id);
    const first = await this.redis.getrangeBuffer(key, 0, READ_SLICE_BYTES - 1);
    if (first.length < READ_SLICE_BYTES) return first.length === 0 ? null : first;
    const status = storedStatus(first);
    if (status === null || !isFinalStatus(status)) return this.redis.getBuffer(key);
    const length = await this.redis.strlen(key);
    if (length < first.length) return null;
    const whole = Buffer.allocUnsafe(length);
    first.copy(whole);
    for (let at = first.length; at < length; at += READ_SLICE_BYTES) {
      const end = Math.min(at + READ_SLICE_BYTES, length);
      const slice = await this.redis.getrangeBuffer(key, at, end - 1);
      if (slice.length !== end - at) return null;
      slice.copy(whole, at);
    }
    return whole;
  }

  /** The record for a follower: when it is done, its bytes, unparsed; else parsed, to replay its progress. */
  async getFollowed(id: string): Promise<FollowedRecord | null> {
    const stored = await this.getBytes(id);
    if (stored === null) return null;
    if (storedStatus(stored) === 'done') return { done: stored };
    return { record: JSON.parse(stored.toString('utf8')) as RunRecord };
  }

  /** Removes a record that was never queued, and its admission. */
  async discard(id: string): Promise<void> {
    await this.redis.del(keys.run(id));
    await releaseRun(this.redis, id);
  }

  /**
   * The worker starts a run: the running record, and its signals (a
   * 'requeued' first when an earlier attempt had started it, 'started',
   * and 'compiled' for a language without a compile step). Nothing is
   * written when the lock is lost, or when a cancel was asked for the run
   * ('cancelled': it must not start).
   */
  start(record: RunRecord, lock: JobLock, signals: PublishedSignal[]): Promise<HeldWrite> {
    return this.writeHeld(record, lock, signals, { checkCancel: true });
  }

  /** A step of a running run: the record with its progress, and the step's signal. False when the lock is lost (nothing written). */
  async progress(record: RunRecord, lock: JobLock, signal: PublishedSignal): Promise<boolean> {
    return (await this.writeHeld(record, lock, [signal], { checkCancel: false })) === 'written';
  }

  /** The run goes back to the queue (a shutdown, a retry): its queued record, and 'requeued'. False when the lock is lost. */
  async requeue(record: RunRecord, lock: JobLock): Promise<boolean> {
    const signal: PublishedSignal = { type: 'requeued', id: record.id };
    return (await this.writeHeld(record, lock, [signal], { checkCancel: false })) === 'written';
  }

  private async writeHeld(
    record: RunRecord,
    lock: JobLock,
    signals: PublishedSignal[],
    opts: { checkCancel: boolean },
  ): Promise<HeldWrite> {
    const written = await writeHeld.run(
      this.redis,
      [keys.run(record.id), lock.key, keys.cancel(record.id)],
      [
        JSON.stringify(record),
        this.ttlSeconds,
        lock.token,
        opts.checkCancel ? '1' : '0',
        RUN_EVENTS_CHANNEL,
        ...signals.map((signal) => JSON.stringify(signal)),
      ],
    );
    return written === 1 ? 'written' : written === 2 ? 'cancelled' : 'lock_lost';
  }

  /**
   * The worker's one write of a final record, with the outputs, which also
   * gives the run's admission back and publishes 'done' or 'cancelled',
   * while it holds the job's lock. False when it does not: nothing was
   * written, released or published (the lock's new holder does all three).
   * A refusal for memory is tried again for a while (see
   * FULL_RETRY_DELAYS_MS) rather than losing the result. A record with
   * long outputs is encoded into bytes a slice at a time (see jsonOf), and
   * one longer than WRITE_SLICE_BYTES is written a slice at a time (stage)
   * before the script moves it in place.
   */
  async putFinal(record: RunRecord, lock: JobLock): Promise<boolean> {
    const encoded = await jsonOf(record);
    const signal = finalSignal(record, encoded);
    const bytes = Buffer.byteLength(encoded) > WRITE_SLICE_BYTES ? Buffer.from(encoded) : null;
    const written = async (): Promise<boolean> => {
      const keysOfWrite = [keys.run(record.id), ...RELEASE_KEYS, lock.key];
      const common = [this.ttlSeconds, record.id, lock.token, RUN_EVENTS_CHANNEL, signal];
      if (bytes === null) return (await writeFinal.run(this.redis, keysOfWrite, [encoded, ...common])) === 1;
      const staged = keys.stagedFinal(record.id, lock.token);
      for (let staging = 1; ; staging++) {
        await this.stage(staged, bytes);
        const outcome = await writeFinalStaged.run(this.redis, [...keysOfWrite, staged], [bytes.length, ...common]);
        if (outcome !== 3) return outcome === 1;
        // Gone before it was moved in place: expired, or evicted by a Redis configured to evict.
        if (staging === MAX_STAGINGS) throw new Error(`the final record of run ${record.id} did not stay in Redis while it was written`);
      }
    };
    for (let attempt = 0; ; attempt++) {
      try {
        return await written();
      } catch (error) {
        const delay = FULL_RETRY_DELAYS_MS[attempt];
        if (storeFault(error) !== 'full' || delay === undefined) throw error;
        await sleep(delay);
      }
    }
  }

  /**
   * A long record written a slice per command: sent whole, ioredis copies
   * it into one buffer and the socket takes it in one go, holding the
   * event loop (README: "A long record is written a slice at a time"). The
   * key is the run's and the lock token's, so that a worker that lost the
   * lock and still writes cannot mix its slices into the new owner's.
   */
  private async stage(key: string, bytes: Buffer): Promise<void> {
    await this.redis.set(key, bytes.subarray(0, WRITE_SLICE_BYTES), 'EX', STAGED_TTL_SECONDS);
    for (let at = WRITE_SLICE_BYTES; at < bytes.length; at += WRITE_SLICE_BYTES)
      await this.redis.append(key, bytes.subarray(at, at + WRITE_SLICE_BYTES));
  }

  /**
   * Marks the run cancelled for the worker (keys.cancel with the result TTL,
   * which the script that starts a run checks) and tells workers now
   * (CANCEL_CHANNEL).
   */
  async requestCancel(id: string): Promise<void> {
    await this.redis.multi().set(keys.cancel(id), '1', 'EX', this.ttlSeconds).publish(CANCEL_CHANNEL, id).exec();
  }

  /** The run becomes cancelled if it is still queued. Returns the record as it is afterwards (null if gone). */
  cancelIfQueued(id: string, now: number): Promise<RunRecord | null> {
    return this.update(id, (record) => (record.status === 'queued' ? { ...record, status: 'cancelled', finishedAt: now } : null));
  }

  /**
   * The run becomes done with verdict internal_error unless it already is
   * final: for a job that failed (the worker crashed or threw) without
   * writing a final record, so that nobody waits on a run forever.
   */
  failIfUnfinished(id: string, error: RunError, now: number): Promise<RunRecord | null> {
    return this.update(id, (record) => {
      if (isFinal(record)) return null;
      const { progress: _progress, ...rest } = record;
      return { ...rest, status: 'done', verdict: 'internal_error', error, finishedAt: now };
    });
  }

  /** Read, change, compare-and-set; change returns null to leave the record as it is. */
  private async update(id: string, change: (record: RunRecord) => RunRecord | null): Promise<RunRecord | null> {
    const key = keys.run(id);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const raw = await this.redis.get(key);
      if (raw === null) return null;
      const current = JSON.parse(raw) as RunRecord;
      const next = change(current);
      if (next === null) return current;
      const encoded = JSON.stringify(next);
      const final = isFinal(next);
      const args = [raw, encoded, id, final ? '1' : '0', RUN_EVENTS_CHANNEL, final ? finalSignal(next, encoded) : ''];
      if ((await compareAndSet.run(this.redis, [key, ...RELEASE_KEYS], args)) === 1) return next;
    }
    // Someone else keeps writing it (the worker, mid-run): theirs is newer than ours.
    return this.get(id);
  }
}
