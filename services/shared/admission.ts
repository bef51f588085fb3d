import { keys, type RunRecord } from './contract.ts';
import { LuaScript, type Redis } from './redis.ts';

/**
 * Admission of runs into the queue, in Redis so that every API process
 * shares it. A run is admitted once, atomically, against three limits:
 *
 *  - the queue's backlog (the runs no worker has taken yet): past the
 *    capacity the API answers 503 queue_full;
 *  - its client's runs queued or running (a ZSET per client), so that one
 *    client cannot fill the queue: past the cap the API answers 429;
 *  - the Redis memory it may need: each admitted run reserves the bytes of
 *    its worst case (its job, and a final record with every output at its
 *    limit), and a run whose reservation does not fit in the room the API
 *    measured (maxmemory less headroom, less what Redis already holds) is
 *    refused with store_full. The runs already admitted can therefore
 *    always write their results: none is lost to a full Redis.
 *
 * The script that admits a run also writes its queued record (the one write
 * of a record outside run-store.ts): admitted and recorded in one step, one
 * command.
 *
 * The worker releases a run's admission in the same script that writes its
 * final record; the API does when it cancels a queued run or records a run
 * that failed. Entries carry the time they go stale (the result TTL after
 * the run was created), so a run that vanished (its job removed by hand,
 * say) gives its share back by itself.
 *
 * The reservations' sum is kept beside them (keys.reservedTotal), changed
 * by every script that adds or removes one, so that an admission costs the
 * same however many runs are admitted. Summing the hash on each admission
 * cost Redis 0.45 ms per admission with 1,000 runs admitted (the default
 * backlog) and 7 ms with 10,000, on its one thread. The sum is counted
 * again from the hash, the source of truth, when it is missing or below
 * zero (the key deleted by hand), when it is not zero beside an empty hash,
 * and at most RECOUNT_SECONDS after the last count whatever it says: a sum
 * gone wrong (a process of an older version beside newer ones during a
 * rollout, which changes the hash but not the sum) mends itself within that.
 */

/** Stale reservations dropped per admission: bounded work, and the backlog of them drains over a few calls. */
const STALE_PER_CALL = 100;
/** The longest a sum is trusted without counting it again: one walk of the hash a minute. */
const RECOUNT_SECONDS = 60;

// KEYS: client runs, reservations, reservation expiry, reservations' sum, the run's record,
// the recount marker, then the backlog: ARGV[9] lists (LLEN), then sorted sets (ZCARD).
// ARGV: now, staleAt, run id, bytes, client cap, room (bytes; -1 when Redis has no maxmemory), client,
// queue capacity, number of backlog lists, the record (JSON), its TTL (s).
// Returns {0, position among the client's runs} when admitted (and the record written),
// {1, active runs} over the client cap, {2, bytes already reserved} when the store has no
// room, {3, backlog} when the queue is full, {4, 0} when the record's key is taken.
// Only ZREM/HDEL (never refused for memory) run before the checks, and the DECRBYs after
// them: a script that has written is not refused for memory midway. Then the recount's
// marker and sum, which a full Redis may refuse: that is 503 store_full too.
const admit = new LuaScript(
  'admit',
  `
local now = tonumber(ARGV[1])
local stale = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, ${STALE_PER_CALL})
for _, id in ipairs(stale) do
  local reservation = redis.call('HGET', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  if reservation then
    redis.call('HDEL', KEYS[2], id)
    redis.call('DECRBY', KEYS[4], tonumber(string.match(reservation, '^%d+')) or 0)
  end
end
local lists = tonumber(ARGV[9])
local backlog = 0
for i = 7, #KEYS do
  if i < 7 + lists then backlog = backlog + redis.call('LLEN', KEYS[i])
  else backlog = backlog + redis.call('ZCARD', KEYS[i]) end
end
if backlog >= tonumber(ARGV[8]) then return {3, backlog} end
if redis.call('EXISTS', KEYS[5]) == 1 then return {4, 0} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local active = redis.call('ZCARD', KEYS[1])
if active >= tonumber(ARGV[5]) then return {1, active} end
local reserved = tonumber(redis.call('GET', KEYS[4]))
if reserved == nil or reserved < 0 or (reserved ~= 0 and redis.call('HLEN', KEYS[2]) == 0) or redis.call('EXISTS', KEYS[6]) == 0 then
  reserved = 0
  for _, entry in ipairs(redis.call('HVALS', KEYS[2])) do reserved = reserved + (tonumber(string.match(entry, '^%d+')) or 0) end
  redis.call('SET', KEYS[4], reserved)
  redis.call('SET', KEYS[6], '1', 'EX', ${RECOUNT_SECONDS})
end
local room = tonumber(ARGV[6])
if room >= 0 and reserved + tonumber(ARGV[4]) > room then return {2, reserved} end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4] .. ' ' .. ARGV[7])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
redis.call('INCRBY', KEYS[4], ARGV[4])
redis.call('SET', KEYS[5], ARGV[10], 'EX', ARGV[11])
return {0, active + 1}
`,
);

/**
 * The Lua that gives a run's admission back, for the scripts that end a
 * run: KEYS[first] to KEYS[first + 2] are RELEASE_KEYS, id a Lua
 * expression for the run id. The reservation names the client, whose ZSET
 * is found from it, so whoever ends a run needs only its id. ZREM and HDEL
 * are never refused for memory, and the DECRBY after them is not either (a
 * script that has written is not stopped midway): a full Redis still frees
 * a run's share.
 */
export function releaseLua(first: number, id: string): string {
  return `
local reservation = redis.call('HGET', KEYS[${first}], ${id})
if reservation then
  local client = string.match(reservation, '^%d+ (.*)$')
  if client then redis.call('ZREM', '${keys.clientRuns('')}' .. client, ${id}) end
  redis.call('HDEL', KEYS[${first}], ${id})
  redis.call('DECRBY', KEYS[${first + 2}], tonumber(string.match(reservation, '^%d+')) or 0)
end
redis.call('ZREM', KEYS[${first + 1}], ${id})`;
}

/** The keys releaseLua needs, in its order. */
export const RELEASE_KEYS = [keys.reservations, keys.reservationExpiry, keys.reservedTotal];

const release = new LuaScript(
  'release',
  `${releaseLua(1, 'ARGV[1]')}
return 1`,
);

export type Admission =
  | { admitted: true; position: number }
  | { admitted: false; reason: 'queue_full'; backlog: number }
  | { admitted: false; reason: 'client_busy'; activeRuns: number }
  | { admitted: false; reason: 'store_full'; reservedBytes: number }
  | { admitted: false; reason: 'id_taken' };

/** The keys whose sizes add up to the queue's backlog: lists (LLEN) and sorted sets (ZCARD). */
export interface Backlog {
  lists: string[];
  sortedSets: string[];
  /** The most runs it may hold: at it, runs are refused. */
  capacity: number;
}

export interface AdmitRequest {
  /** The run's queued record, written when the run is admitted; its id is the run's. */
  record: RunRecord;
  /** The record's TTL. */
  ttlSeconds: number;
  backlog: Backlog;
  client: string;
  /** Worst-case Redis bytes of the run. */
  bytes: number;
  clientCap: number;
  /** Bytes Redis may still take for new runs; null when it has no memory limit. */
  roomBytes: number | null;
  now: number;
  staleAt: number;
}

/** Admits the run and writes its queued record, or says why not (and writes nothing). */
export async function admitRun(redis: Redis, request: AdmitRequest): Promise<Admission> {
  const { record, backlog } = request;
  const [code, value] = (await admit.run(
    redis,
    [keys.clientRuns(request.client), ...RELEASE_KEYS, keys.run(record.id), keys.reservedRecount, ...backlog.lists, ...backlog.sortedSets],
    [
      request.now,
      request.staleAt,
      record.id,
      Math.ceil(request.bytes),
      request.clientCap,
      request.roomBytes === null ? -1 : Math.max(0, Math.floor(request.roomBytes)),
      request.client,
      backlog.capacity,
      backlog.lists.length,
      JSON.stringify(record),
      request.ttlSeconds,
    ],
  )) as [number, number];
  switch (code) {
    case 0:
      return { admitted: true, position: value };
    case 1:
      return { admitted: false, reason: 'client_busy', activeRuns: value };
    case 2:
      return { admitted: false, reason: 'store_full', reservedBytes: value };
    case 3:
      return { admitted: false, reason: 'queue_full', backlog: value };
    default:
      return { admitted: false, reason: 'id_taken' };
  }
}

/** Gives a run's admission back. Idempotent. */
export async function releaseRun(redis: Redis, id: string): Promise<void> {
  await release.run(redis, RELEASE_KEYS, [id]);
}

/** Bytes reserved by the runs admitted and not yet ended (the sum as kept; the next admission mends one gone wrong). */
export async function reservedBytes(redis: Redis): Promise<number> {
  const sum = Number(await redis.get(keys.reservedTotal));
  return Number.isFinite(sum) && sum > 0 ? sum : 0;
}
