import { CANCEL_CHANNEL, keys, type RunRecord } from './contract.ts';
import { LuaScript, type Redis } from './redis.ts';

/**
 * The run records in Redis (keys.run(id)), the source of truth about a run.
 * The API creates a record and may move it to a final state (cancelled while
 * still queued; internal_error when the job failed without the worker writing
 * one); the worker writes everything else. Every change the API makes is a
 * compare-and-set against the JSON it read, so it never overwrites a record
 * the worker changed in between.
 */
const FINAL_STATUSES: ReadonlySet<RunRecord['status']> = new Set(['done', 'cancelled']);
/** Attempts of a read-modify-write before giving up to a faster writer. */
const MAX_CAS_ATTEMPTS = 5;

// Sets KEYS[1] to ARGV[2] only if it still holds ARGV[1]; keeps the key's TTL.
const compareAndSet = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
`);

export function isFinal(record: RunRecord): boolean {
  return FINAL_STATUSES.has(record.status);
}

export class RunStore {
  constructor(private readonly redis: Redis, private readonly ttlSeconds: number) {}

  async get(id: string): Promise<RunRecord | null> {
    const raw = await this.redis.get(keys.run(id));
    return raw === null ? null : (JSON.parse(raw) as RunRecord);
  }

  /** Writes a new record with the result TTL; false if the id is taken. */
  async create(record: RunRecord): Promise<boolean> {
    return (await this.redis.set(keys.run(record.id), JSON.stringify(record), 'EX', this.ttlSeconds, 'NX')) === 'OK';
  }

  async delete(id: string): Promise<void> {
    await this.redis.del(keys.run(id));
  }

  /** Marks the run cancelled for the worker (keys.cancel with the result TTL) and tells workers now (CANCEL_CHANNEL). */
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
  failIfUnfinished(id: string, error: { code: string; message: string }, now: number): Promise<RunRecord | null> {
    return this.update(id, (record) => (isFinal(record) ? null : { ...record, status: 'done', verdict: 'internal_error', error, finishedAt: now }));
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
      if ((await compareAndSet.run(this.redis, [key], [raw, encoded])) === 1) return next;
    }
    // Someone else keeps writing it (the worker, mid-run): theirs is newer than ours.
    return this.get(id);
  }
}
