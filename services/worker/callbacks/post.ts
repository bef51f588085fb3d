import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { type CallbackTarget, pinnedLookup } from './target.ts';

/** A TCP connect that takes longer has no live receiver behind it. */
export const CALLBACK_CONNECT_TIMEOUT_MS = 5_000;
/** Bounds a receiver that answers with endless headers (Node's default is 16 KiB). */
const MAX_RESPONSE_HEADER_BYTES = 16 * 1024;
const USER_AGENT = 'Brig-Callback/1';

/** The attempt did not get a status: connect or TLS failed, the receiver hung up, or time ran out. Worth another try. */
export class CallbackNetworkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CallbackNetworkError';
  }
}

/**
 * One POST to the target's pinned address, with the Host header, SNI and
 * certificate check for the URL's own host name. Resolves with the response
 * status once the status line and headers are in; the response body is
 * never read (the socket is closed), redirects are never followed, and no
 * connection is kept for another delivery (agent: false).
 *
 * `deadline` ends the whole attempt (it is shared with the DNS lookup before
 * it); the connect has its own, shorter bound. `tls.ca` replaces the
 * system's trust anchors (tests).
 */
export function postCallback(
  target: CallbackTarget,
  body: Buffer,
  headers: Record<string, string>,
  deadline: AbortSignal,
  tls: { ca?: string } = {},
): Promise<number> {
  const { url } = target;
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<number>((resolve, reject) => {
    let settled = false;
    let connectTimer: NodeJS.Timeout | undefined;
    const finish = (error: Error | null, status?: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      deadline.removeEventListener('abort', onDeadline);
      if (error) reject(error);
      else resolve(status!);
    };
    const req = request({
      method: 'POST',
      host: target.hostname,
      port: url.port || undefined,
      path: `${url.pathname}${url.search}`,
      auth: url.username ? `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}` : undefined,
      // Node's https agent takes SNI from the Host header; an IP literal gets none (RFC 6066 §3).
      servername: isIP(target.hostname) ? '' : target.hostname,
      ...(tls.ca === undefined ? {} : { ca: tls.ca }),
      lookup: pinnedLookup(target),
      agent: false,
      maxHeaderSize: MAX_RESPONSE_HEADER_BYTES,
      headers: {
        ...headers,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        'user-agent': USER_AGENT,
        connection: 'close',
      },
    });
    const onDeadline = () =>
      req.destroy(new CallbackNetworkError(`no answer within the callback timeout (${describeReason(deadline.reason)})`));
    connectTimer = setTimeout(
      () => req.destroy(new CallbackNetworkError(`no connection to ${target.address} within ${CALLBACK_CONNECT_TIMEOUT_MS} ms`)),
      CALLBACK_CONNECT_TIMEOUT_MS,
    );
    req.once('socket', (socket) => {
      if (!socket.connecting) clearTimeout(connectTimer);
      else socket.once('connect', () => clearTimeout(connectTimer));
    });
    req.once('response', (response: IncomingMessage) => {
      // The status is all we wanted: whatever the body is, it is not read.
      response.destroy();
      req.destroy();
      finish(null, response.statusCode ?? 0);
    });
    req.on('error', (error) =>
      finish(
        error instanceof CallbackNetworkError
          ? error
          : new CallbackNetworkError(`callback to ${target.address} failed: ${error.message}`, { cause: error }),
      ),
    );
    if (deadline.aborted) onDeadline();
    else deadline.addEventListener('abort', onDeadline, { once: true });
    req.end(body);
  });
}

function describeReason(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason);
}
