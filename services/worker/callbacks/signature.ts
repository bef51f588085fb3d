import { createHmac } from 'node:crypto';
import { MS_PER_S } from '../../../runtime/units.ts';

/**
 * Callback headers after Standard Webhooks (standardwebhooks.com), so that a
 * receiver can verify them with any of its libraries, or by hand:
 *
 *   webhook-id         the run id: the same on every attempt, to deduplicate on
 *   webhook-timestamp  when this attempt was signed, in Unix seconds
 *   webhook-signature  "v1," and the base64 HMAC-SHA256, keyed with the
 *                      bytes of BRIG_CALLBACK_SECRET (base64 after "whsec_"),
 *                      of "<webhook-id>.<webhook-timestamp>.<body>"
 *
 * The receiver computes the same HMAC over the raw body bytes, compares it
 * in constant time with each space-separated "v1,..." entry, and refuses a
 * timestamp more than a few minutes (the libraries: 5) from its own clock,
 * which bounds replays; the id catches the replays inside that window.
 * Without a secret, the signature header is left out.
 */
export const CALLBACK_HEADERS = {
  id: 'webhook-id',
  timestamp: 'webhook-timestamp',
  signature: 'webhook-signature',
} as const;

const SIGNATURE_VERSION = 'v1';

/** The signed headers of one attempt; `key` is the decoded secret (config.ts callbackSecretKey). */
export function callbackHeaders(id: string, body: Buffer | string, key: Buffer | null, nowMs: number = Date.now()): Record<string, string> {
  const timestamp = String(Math.floor(nowMs / MS_PER_S));
  const headers: Record<string, string> = { [CALLBACK_HEADERS.id]: id, [CALLBACK_HEADERS.timestamp]: timestamp };
  if (key) headers[CALLBACK_HEADERS.signature] = `${SIGNATURE_VERSION},${sign(key, id, timestamp, body)}`;
  return headers;
}

function sign(key: Buffer, id: string, timestamp: string, body: Buffer | string): string {
  return createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64');
}
