import { keys } from './contract.ts';
import { LuaScript, type Redis } from './redis.ts';

/**
 * Admission of runs into the queue, in Redis so that every API process
 * shares it. A run is admitted once, atomically, against two limits:
 *
 *  - its client's runs queued or running (a ZSET per client), so that one
 *    client cannot fill the queue: past the cap the API answers 429;
 *  - the Redis memory it may need: each admitted run reserves the bytes of
 *    its worst case (its job, and a final record with every output at its
 *    limit), and a run whose reservation does not fit in the room the API
 *    measured (maxmemory less headroom, less what Redis already holds) is
 *    refused with store_full. The runs already admitted can therefore
 *    always write their results: none is lost to a full Redis.
 *
 * The worker releases a run's admission in the same script that writes its
 * final record; the API does when it cancels a queued run or records a run
 * that failed. Entries carry the time they go stale (the result TTL after
 * the run was created), so a run that vanished (its job removed by hand,
 * say) gives its share back by itself.
 */

/** Stale reservations dropped per admission: bounded work, and the backlog of them drains over a few calls. */
const STALE_PER_CALL = 100;

// KEYS: client runs, reservations, reservation expiry.
// ARGV: now, staleAt, run id, bytes, client cap, room (bytes; -1 when Redis has no maxmemory), client.
// Returns {0, position among the client's runs} when admitted, {1, active runs} over the
// client cap, {2, bytes already reserved} when the store has no room.
// Only ZREM/HDEL (never refused for memory) run before the checks.
const admit = new LuaScript(
  'admit',
  `
local now = tonumber(ARGV[1])
local stale = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, ${STALE_PER_CALL})
for _, id in ipairs(stale) do
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local active = redis.call('ZCARD', KEYS[1])
if active >= tonumber(ARGV[5]) then return {1, active} end
local room = tonumber(ARGV[6])
if room >= 0 then
  local reserved = 0
  for _, entry in ipairs(redis.call('HVALS', KEYS[2])) do reserved = reserved + tonumber(string.match(entry, '^%d+')) end
  if reserved + tonumber(ARGV[4]) > room then return {2, reserved} end
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4] .. ' ' .. ARGV[7])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
return {0, active + 1}
`,
);

/**
 * The Lua that gives a run's admission back, for the scripts that end a
 * run: KEYS[first] and KEYS[first + 1] are the reservations and their
 * expiry, id a Lua expression for the run id. The reservation names the
 * client, whose ZSET is found from it, so whoever ends a run needs only its
 * id. ZREM and HDEL are never refused for memory: a full Redis still frees
 * a run's share.
 */
export function releaseLua(first: number, id: string): string {
  return `
local reservation = redis.call('HGET', KEYS[${first}], ${id})
if reservation then
  local client = string.match(reservation, '^%d+ (.*)$')
  if client then redis.call('ZREM', '${keys.clientRuns('')}' .. client, ${id}) end
  redis.call('HDEL', KEYS[${first}], ${id})
end
redis.call('ZREM', KEYS[${first + 1}], ${id})`;
}

/** The keys releaseLua needs, in its order. */
export const RELEASE_KEYS = [keys.reservations, keys.reservationExpiry];

const release = new LuaScript(
  'release',
  `${releaseLua(1, 'ARGV[1]')}
return 1`,
);

export type Admission =
  | { admitted: true; position: number }
  | { admitted: false; reason: 'client_busy'; activeRuns: number }
  | { admitted: false; reason: 'store_full'; reservedBytes: number };

export interface AdmitRequest {
  id: string;
  client: string;
  /** Worst-case Redis bytes of the run. */
  bytes: number;
  clientCap: number;
  /** Bytes Redis may still take for new runs; null when it has no memory limit. */
  roomBytes: number | null;
  now: number;
  staleAt: number;
}

export async function admitRun(redis: Redis, request: AdmitRequest): Promise<Admission> {
  const [code, value] = (await admit.run(
    redis,
    [keys.clientRuns(request.client), ...RELEASE_KEYS],
    [
      request.now,
      request.staleAt,
      request.id,
      Math.ceil(request.bytes),
      request.clientCap,
      request.roomBytes === null ? -1 : Math.max(0, Math.floor(request.roomBytes)),
      request.client,
    ],
  )) as [number, number];
  if (code === 0) return { admitted: true, position: value };
  if (code === 1) return { admitted: false, reason: 'client_busy', activeRuns: value };
  return { admitted: false, reason: 'store_full', reservedBytes: value };
}

/** Gives a run's admission back. Idempotent. */
export async function releaseRun(redis: Redis, id: string): Promise<void> {
  await release.run(redis, RELEASE_KEYS, [id]);
}

/** Bytes reserved by the runs admitted and not yet ended. */
export async function reservedBytes(redis: Redis): Promise<number> {
  const entries = await redis.hvals(keys.reservations);
  return entries.reduce((sum, entry) => sum + Number.parseInt(entry, 10), 0);
}
