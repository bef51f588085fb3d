import { createHmac, timingSafeEqual } from 'node:crypto';

/** How far from the receiver's clock a callback's timestamp may be (the Standard Webhooks libraries' default). */
export const CALLBACK_TOLERANCE_S = 300;

/**
 * A receiver's check of a Brig callback, as the README tells it, written
 * here with node:crypto rather than with Brig's own signing code.
 */
export function verifyCallback(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  body: string,
  nowS = Math.floor(Date.now() / 1000),
): boolean {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof timestamp !== 'string' || typeof signatures !== 'string') return false;
  if (!/^[0-9]+$/.test(timestamp) || Math.abs(nowS - Number(timestamp)) > CALLBACK_TOLERANCE_S) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();
  return signatures.split(' ').some((entry) => {
    const [version, signature] = entry.split(',');
    const given = Buffer.from(signature ?? '', 'base64');
    return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected);
  });
}
