import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from '../../services/shared/redis.ts';
import { type PrivateRedis, startPrivateRedis } from '../../services/shared/redis-server.ts';

export { freePort } from '../../services/shared/redis-server.ts';

export type TestRedis = PrivateRedis & { url: string; port: number };

/**
 * A real redis-server on a free loopback port, with its data in a temp dir;
 * stop() kills it and removes the dir. Tests get a TCP port and every command
 * (they reconfigure it), unlike the locked-down one of `brig serve`.
 */
export async function startRedis(): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'brig-test-redis-'));
  const redis = await startPrivateRedis(dir, { tcp: true });
  return {
    ...redis,
    url: redis.url!,
    port: redis.port!,
    async stop() {
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Calls of each command since the last call, from INFO commandstats (a
 * script's commands counted too); resets the counts. Leaves out INFO and
 * CONFIG, its own.
 */
export async function commandsSince(redis: Redis): Promise<Record<string, number>> {
  const info = await redis.info('commandstats');
  await redis.config('RESETSTAT');
  const calls: Record<string, number> = {};
  for (const [, name, count] of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm))
    if (name !== 'info' && !name!.startsWith('config')) calls[name!] = Number(count);
  return calls;
}
