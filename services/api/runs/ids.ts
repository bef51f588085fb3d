import { randomInt } from 'node:crypto';
import { MS_PER_S } from '../../../runtime/units.ts';
import { ServiceError } from '../../shared/errors.ts';

/**
 * Run ids: the creation time in ms as 9 base36 digits (enough until the year
 * 5188), then 16 random base36 digits (82.7 bits). Ids sort by creation time,
 * and a missing record whose id is older than the result TTL is known to have
 * expired rather than never existed.
 */
const TIME_DIGITS = 9;
const RANDOM_DIGITS = 16;
const MAX_ECHOED_ID_CHARS = 64;
const RUN_ID = new RegExp(`^[0-9a-z]{${TIME_DIGITS + RANDOM_DIGITS}}$`);
const BASE36 = '0123456789abcdefghijklmnopqrstuvwxyz';

/**
 * crypto.randomInt draws from a cache of CSPRNG bytes and rejects the values
 * that would favour some digits; one randomBytes call and a BigInt per id
 * cost 56–103 µs after an idle pause.
 */
function randomDigits(count: number): string {
  let digits = '';
  for (let i = 0; i < count; i++) digits += BASE36[randomInt(BASE36.length)];
  return digits;
}

export function newRunId(nowMs: number = Date.now()): string {
  return nowMs.toString(36).padStart(TIME_DIGITS, '0') + randomDigits(RANDOM_DIGITS);
}

export function isRunId(id: string): boolean {
  return RUN_ID.test(id);
}

/** When the run was created (ms since the epoch), or null for a string that is not a run id. */
export function runIdCreatedAt(id: string): number | null {
  return isRunId(id) ? parseInt(id.slice(0, TIME_DIGITS), 36) : null;
}

/**
 * The answer for an id without a record: expired when the id says the run
 * was created longer than the result TTL ago, else not found.
 */
export function missingRunError(id: string, resultTtlSeconds: number, nowMs: number = Date.now()): ServiceError {
  const createdAt = runIdCreatedAt(id);
  if (createdAt !== null && createdAt + resultTtlSeconds * MS_PER_S <= nowMs) {
    return new ServiceError('run_expired', `run ${id} has expired: results are kept for ${resultTtlSeconds} seconds`, { field: 'id' });
  }
  return new ServiceError('run_not_found', `no run has the id ${JSON.stringify(id.slice(0, MAX_ECHOED_ID_CHARS))}`, { field: 'id' });
}
