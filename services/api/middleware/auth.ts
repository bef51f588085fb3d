import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { ServiceError } from '../../shared/errors.ts';
import { locals } from '../context.ts';

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;
/** 128 bits of the key's digest name its client: unique enough, and no use to anyone who reads Redis. */
const KEY_DIGEST_HEX_CHARS = 32;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function presentedKey(req: Request): string | undefined {
  const authorization = req.get('authorization');
  if (authorization !== undefined) return BEARER.exec(authorization)?.[1];
  return req.get('x-auth-token') || undefined;
}

/**
 * Requires one of the configured API keys, as Authorization: Bearer <key> or
 * X-Auth-Token: <key>; no keys configured means no check. Keys are compared
 * as SHA-256 digests with timingSafeEqual, against every configured key
 * without stopping at a match, so the time taken says nothing about a key.
 */
export function requireApiKey(apiKeys: readonly string[]): RequestHandler {
  const digests = apiKeys.map(sha256);
  return (req, res, next) => {
    if (digests.length === 0) return next();
    const key = presentedKey(req);
    if (key === undefined) {
      throw new ServiceError('unauthorized', 'this API needs a key: send Authorization: Bearer <key> or X-Auth-Token: <key>');
    }
    const digest = sha256(key);
    let valid = false;
    for (const known of digests) valid = timingSafeEqual(known, digest) || valid;
    if (!valid) throw new ServiceError('unauthorized', 'the API key is not valid; check Authorization or X-Auth-Token');
    // Limits count per key; a digest prefix keeps the key itself out of Redis.
    locals(res).apiKeyDigest = digest.toString('hex').slice(0, KEY_DIGEST_HEX_CHARS);
    next();
  };
}
