import { keys, type WorkerHeartbeat } from './contract.ts';
import { LuaScript, type Redis } from './redis.ts';

/**
 * Where the live workers are found: each worker's heartbeat at
 * keys.worker(id), with a TTL it renews, and its id in keys.workers. The API
 * reads the ids from that set, not from a SCAN of keys.worker(*): a SCAN
 * walks the whole keyspace, the stored runs too, so a read cost Redis time
 * in proportion to the results kept (500 round trips and 47 ms of Redis's
 * one thread with 100,000 records; a probe). Now a read is one script whose
 * work follows the number of workers.
 *
 * The heartbeat's TTL stays the truth: an id whose key has expired (a worker
 * that died without a word) is dropped from the set by the next read, in
 * the same script, so the set holds the live workers and at most those that
 * died since the last read. A worker that comes back after its key expired
 * puts its id back with its next heartbeat.
 */

// KEYS: the worker's heartbeat, the set of ids. ARGV: the heartbeat (JSON), its TTL (ms), the worker's id.
const publish = new LuaScript(
  'heartbeat',
  `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
`,
);

// KEYS: the worker's heartbeat, the set of ids. ARGV: the worker's id.
const withdraw = new LuaScript(
  'heartbeat-withdrawn',
  `
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
`,
);

// KEYS: the set of ids. Returns the heartbeats found, as stored. SREM and
// GET are never refused for memory, so a full Redis still answers.
const read = new LuaScript(
  'live-workers',
  `
local found = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local heartbeat = redis.call('GET', '${keys.worker('')}' .. id)
  if heartbeat then found[#found + 1] = heartbeat else redis.call('SREM', KEYS[1], id) end
end
return found
`,
);

/** Publishes (or renews) a worker's heartbeat for ttlMs. */
export async function publishHeartbeat(redis: Redis, heartbeat: WorkerHeartbeat, ttlMs: number): Promise<void> {
  await publish.run(redis, [keys.worker(heartbeat.workerId), keys.workers], [JSON.stringify(heartbeat), ttlMs, heartbeat.workerId]);
}

/** A worker that stops: gone from the live ones at once. */
export async function withdrawHeartbeat(redis: Redis, workerId: string): Promise<void> {
  await withdraw.run(redis, [keys.worker(workerId), keys.workers], [workerId]);
}

/** The heartbeats that have not expired, as stored (JSON, unchecked). */
export async function readHeartbeats(redis: Redis): Promise<string[]> {
  return (await read.run(redis, [keys.workers], [])) as string[];
}
