import type { RequestHandler } from 'express';
import { MS_PER_S } from '../../../runtime/units.ts';
import { keys } from '../../shared/contract.ts';
import { ServiceError } from '../../shared/errors.ts';
import { LuaScript, type Redis } from '../../shared/redis.ts';
import { asyncMiddleware } from '../routes/route.ts';
import { clientOf } from './client-identity.ts';

const WINDOW_MS = 60_000;
/** The counter outlives its window a little, so that clock skew between API processes never resets it early. */
const EXPIRY_SLACK_MS = 5_000;

// INCR and the expiry in one step: a crash between the two cannot leave a counter that never expires.
const countRequest = new LuaScript(
  'count-request',
  `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count
`,
);

/**
 * A fixed-window limit of perMinute requests per API key (or per client
 * address when the API has no keys), counted in Redis so that every API
 * process shares it. 0 turns it off.
 */
export function rateLimit(redis: Redis, perMinute: number): RequestHandler {
  if (perMinute === 0) return (_req, _res, next) => next();
  return asyncMiddleware(async (req, res) => {
    const now = Date.now();
    const windowStart = now - (now % WINDOW_MS);
    const subject = clientOf(req, res);
    const count = Number(await countRequest.run(redis, [keys.rate(subject, windowStart)], [WINDOW_MS + EXPIRY_SLACK_MS]));
    const resetSeconds = Math.max(1, Math.ceil((windowStart + WINDOW_MS - now) / MS_PER_S));
    res.setHeader('X-RateLimit-Limit', String(perMinute));
    res.setHeader('X-RateLimit-Remaining', String(Math.max(0, perMinute - count)));
    res.setHeader('X-RateLimit-Reset', String(resetSeconds));
    if (count > perMinute) {
      const who = subject.startsWith('key:') ? 'this API key' : 'this address';
      throw new ServiceError('rate_limited', `over ${perMinute} requests per minute for ${who}; retry in ${resetSeconds} s`, {
        retryAfterSeconds: resetSeconds,
      });
    }
  });
}
