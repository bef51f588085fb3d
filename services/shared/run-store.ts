import { setTimeout as sleep } from 'node:timers/promises';
import { RELEASE_KEYS, releaseLua, releaseRun } from './admission.ts';
import { CANCEL_CHANNEL, keys, type RunRecord } from './contract.ts';
import type { RunError } from './errors.ts';
import { LuaScript, type Redis } from './redis.ts';
import { storeFault } from './store-errors.ts';

/**
 * The run records in Redis (keys.run(id)), the source of truth about a run,
 * and the one module that reads or writes them. The API creates a record
 * and may move it to a final state (cancelled while still queued;
 * internal_error when the job failed without the worker writing one); the
 * worker writes everything else. Every change the API makes is a
 * compare-and-set against the JSON it read, so it never overwrites a record
 * the worker changed in between. Whoever makes a record final releases the
 * run's admission in the same script.
 */
const FINAL_STATUSES: ReadonlySet<RunRecord['status']> = new Set(['done', 'cancelled']);
/** Attempts of a read-modify-write before giving up to a faster writer. */
const MAX_CAS_ATTEMPTS = 5;
/**
 * A final record refused for memory is tried again this often, up to this
 * many times: admission keeps room for every admitted run, so a refusal can
 * only be brief (another Redis client's writes), and records expire meanwhile.
 */
const FULL_RETRY_DELAYS_MS = [100, 250, 500, 1_000, 2_000, 4_000];

// Sets KEYS[1] to ARGV[2] only if it still holds ARGV[1]; keeps the key's TTL.
// With ARGV[4] = '1' the new record is final and the run's admission is released.
const compareAndSet = new LuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
if ARGV[4] == '1' then ${releaseLua(2, 'ARGV[3]')}
end
return 1
`);

// Writes the final record (KEYS[1]) with its TTL and releases the run's admission.
const writeFinal = new LuaScript(`
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
${releaseLua(2, 'ARGV[3]')}
return 1
`);

export function isFinal(record: RunRecord): boolean {
  return FINAL_STATUSES.has(record.status);
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

  /** The record as stored (JSON), for a sender that passes it on unchanged: one copy fewer than get(). */
  async getEncoded(id: string): Promise<string | null> {
    return this.redis.get(keys.run(id));
  }

  /** Writes a new record with the result TTL; false if the id is taken. */
  async create(record: RunRecord): Promise<boolean> {
    return (await this.redis.set(keys.run(record.id), JSON.stringify(record), 'EX', this.ttlSeconds, 'NX')) === 'OK';
  }

  /** Removes a record that was never queued, and its admission. */
  async discard(id: string): Promise<void> {
    await this.redis.del(keys.run(id));
    await releaseRun(this.redis, id);
  }

  /** The worker's writes of a record that is not final (running, its progress, back to queued). */
  async put(record: RunRecord): Promise<void> {
    await this.redis.set(keys.run(record.id), JSON.stringify(record), 'EX', this.ttlSeconds);
  }

  /**
   * The worker's one write of a final record, with the outputs, which also
   * gives the run's admission back. A refusal for memory is tried again for
   * a while (see FULL_RETRY_DELAYS_MS) rather than losing the result.
   */
  async putFinal(record: RunRecord): Promise<void> {
    const encoded = JSON.stringify(record);
    for (let attempt = 0; ; attempt++) {
      try {
        await writeFinal.run(this.redis, [keys.run(record.id), ...RELEASE_KEYS], [encoded, this.ttlSeconds, record.id]);
        return;
      } catch (error) {
        const delay = FULL_RETRY_DELAYS_MS[attempt];
        if (storeFault(error) !== 'full' || delay === undefined) throw error;
        await sleep(delay);
      }
    }
  }

  /** Marks the run cancelled for the worker (keys.cancel with the result TTL) and tells workers now (CANCEL_CHANNEL). */
  async requestCancel(id: string): Promise<void> {
    await this.redis.multi().set(keys.cancel(id), '1', 'EX', this.ttlSeconds).publish(CANCEL_CHANNEL, id).exec();
  }

  /** True when a cancel was asked for the run. */
  async cancelRequested(id: string): Promise<boolean> {
    return (await this.redis.exists(keys.cancel(id))) === 1;
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
      const final = isFinal(next) ? '1' : '0';
      if ((await compareAndSet.run(this.redis, [key, ...RELEASE_KEYS], [raw, encoded, id, final])) === 1) return next;
    }
    // Someone else keeps writing it (the worker, mid-run): theirs is newer than ours.
    return this.get(id);
  }
}
