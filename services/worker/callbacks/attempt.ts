import type { RunRecord } from '../../shared/contract.ts';
import { isFinal, isFinalStatus, storedStatus } from '../../shared/run-store.ts';
import type { AddressPolicy } from './address-policy.ts';
import { postCallback } from './post.ts';
import type { CallbackJobData } from './queue.ts';
import { callbackHeaders } from './signature.ts';
import { CallbackRefused, type CallbackTarget, type Resolver, resolveTarget, systemResolver } from './target.ts';

/**
 * What one attempt came to. 'failed' may succeed later (a 5xx, 408 or 429,
 * a timeout, a connection or DNS failure, Redis away); 'dropped' never will
 * (a refused address, a redirect, another 4xx, a record that is gone).
 */
export type AttemptResult =
  | { outcome: 'delivered'; status: number; host: string }
  | { outcome: 'dropped' | 'failed'; reason: string; status?: number; host?: string; error?: unknown };

export interface AttemptDeps {
  /** Reads the final record as stored, its bytes (RunStore.getBytes). */
  readRecord: (runId: string) => Promise<Buffer | null>;
  policy: AddressPolicy;
  /** The decoded BRIG_CALLBACK_SECRET; null sends callbacks unsigned. */
  key: Buffer | null;
  /** BRIG_CALLBACK_TIMEOUT_MS: the whole attempt, DNS lookup included. */
  timeoutMs: number;
  /** The system's resolver unless a test brings its own. */
  resolve?: Resolver;
  /** The system's trust anchors unless a test brings its own CA (PEM). */
  tlsCa?: string;
  now?: () => number;
}

/**
 * Status codes a receiver may answer when it cannot take a callback now:
 * a timeout of its own (408), too many requests (429). Every 5xx too.
 */
const RETRY_STATUSES: ReadonlySet<number> = new Set([408, 429]);
const SERVER_ERROR_MIN = 500;

export function statusOutcome(status: number): AttemptResult['outcome'] {
  if (status >= 200 && status < 300) return 'delivered';
  if (RETRY_STATUSES.has(status) || status >= SERVER_ERROR_MIN) return 'failed';
  return 'dropped';
}

/**
 * One delivery attempt: the URL's host checked (and pinned) before the
 * record is read, the record sent as stored, signed, and the answer sorted.
 * Never throws: every way it can end is an AttemptResult.
 */
export async function attemptCallback(data: CallbackJobData, deps: AttemptDeps): Promise<AttemptResult> {
  const deadline = AbortSignal.timeout(deps.timeoutMs);
  let target: CallbackTarget;
  try {
    target = await beforeDeadline(resolveTarget(data.url, deps.policy, deps.resolve ?? systemResolver), deadline);
  } catch (error) {
    if (error instanceof CallbackRefused) return { outcome: 'dropped', reason: error.message };
    return { outcome: 'failed', reason: `callback host lookup failed: ${messageOf(error)}`, error };
  }
  const host = target.url.host;
  let body: Buffer | null;
  try {
    body = await deps.readRecord(data.runId);
  } catch (error) {
    return { outcome: 'failed', reason: `the run record could not be read: ${messageOf(error)}`, host, error };
  }
  if (body === null)
    return {
      outcome: 'dropped',
      reason: 'the run record has expired (BRIG_RESULT_TTL_SECONDS) before its callback could be delivered',
      host,
    };
  // A run whose worker died after its final record runs again, and writes another: that run's end queues this callback again.
  if (!isFinalRecord(body))
    return {
      outcome: 'dropped',
      reason: 'the run record is not final (the run is running again): its next final record will be sent',
      host,
    };
  try {
    const status = await postCallback(target, body, callbackHeaders(data.runId, body, deps.key, deps.now?.()), deadline, {
      ca: deps.tlsCa,
    });
    const outcome = statusOutcome(status);
    if (outcome === 'delivered') return { outcome, status, host };
    const reason =
      status >= 300 && status < 400 ? 'the receiver redirected; redirects are not followed' : `the receiver answered ${status}`;
    return { outcome, reason, status, host };
  } catch (error) {
    return { outcome: 'failed', reason: messageOf(error), host, error };
  }
}

/** getaddrinfo has no timeout of its own: the attempt's deadline stops waiting for it. */
function beforeDeadline<T>(promise: Promise<T>, deadline: AbortSignal): Promise<T> {
  if (deadline.aborted) return Promise.reject(deadline.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(deadline.reason);
    deadline.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => deadline.removeEventListener('abort', onAbort));
  });
}

/**
 * Whether the stored record is final, from its head when it is laid out as
 * Brig writes records (storedStatus): a final record holds the outputs, up
 * to 16 MiB, which need not be parsed to be sent. Otherwise it is parsed; a
 * record that is not JSON has nothing to send either.
 */
function isFinalRecord(body: Buffer): boolean {
  const status = storedStatus(body);
  if (status !== null) return isFinalStatus(status);
  try {
    return isFinal(JSON.parse(body.toString('utf8')) as RunRecord);
  } catch {
    return false;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
