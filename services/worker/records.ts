import type { Redis } from 'ioredis';
import { keys, type RunRecord } from '../shared/contract.ts';

/** The run records in Redis, each kept for the result TTL from its last write. */
export class RunRecords {
  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds: number,
  ) {}

  async write(record: RunRecord): Promise<void> {
    await this.redis.set(keys.run(record.id), JSON.stringify(record), 'EX', this.ttlSeconds);
  }

  async read(id: string): Promise<RunRecord | null> {
    const json = await this.redis.get(keys.run(id));
    return json === null ? null : (JSON.parse(json) as RunRecord);
  }

  /** True when the API recorded a cancel request for the run. */
  async cancelRequested(id: string): Promise<boolean> {
    return (await this.redis.exists(keys.cancel(id))) === 1;
  }
}
