import { randomFillSync } from 'node:crypto';
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
/** The largest multiple of 36 a byte can hold: bytes from it up would favour the low digits, so they are skipped. */
const UNBIASED_BYTES = 252;

/**
 * Random bytes drawn from the CSPRNG 4 KiB at a time, as randomUUID does:
 * one call per id cost ~50 µs of CPU per request on a machine whose caches
 * had gone cold between requests.
 */
const pool = Buffer.alloc(4096);
let poolAt = pool.length;

function randomDigits(count: number): string {
  let digits = '';
  while (digits.length < count) {
    if (poolAt === pool.length) {
      randomFillSync(pool);
      poolAt = 0;
    }
    const byte = pool[poolAt++]!;
    if (byte < UNBIASED_BYTES) digits += BASE36[byte % BASE36.length];
  }
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
