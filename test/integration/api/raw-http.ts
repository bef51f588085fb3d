import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { ERROR_CODES, type ErrorCode } from '../../../services/shared/errors.ts';

/**
 * HTTP/1.1 over a raw socket, for what fetch cannot send (bad percent
 * escapes, lying lengths, garbage request lines), and the checks every
 * answer of the API must pass, whatever it was sent.
 */

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The server closed the connection after the answer (or before one). */
  closed: boolean;
  /** Interim 1xx status lines seen before the answer. */
  interim: number[];
}

const HEAD_END = '\r\n\r\n';

/** The first final answer in the bytes, or null while it is incomplete. */
export function parseAnswer(data: Buffer, method: string): Omit<RawAnswer, 'closed'> | null {
  const interim: number[] = [];
  let offset = 0;
  for (;;) {
    const end = data.indexOf(HEAD_END, offset, 'latin1');
    if (end < 0) return null;
    const [statusLine, ...lines] = data.subarray(offset, end).toString('latin1').split('\r\n');
    const status = Number(statusLine!.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const bodyStart = end + HEAD_END.length;
    if (status >= 100 && status < 200) {
      interim.push(status);
      offset = bodyStart;
      continue;
    }
    const length = method === 'HEAD' ? 0 : Number(headers['content-length'] ?? NaN);
    if (Number.isNaN(length)) return null; // no length: read to the close
    if (data.length - bodyStart < length) return null;
    return { status, headers, body: data.subarray(bodyStart, bodyStart + length).toString('utf8'), interim };
  }
}

/**
 * Sends the bytes (all at once, or piece by piece with a pause between) and
 * reads the first answer: until it is complete, or the server closes, or
 * timeoutMs. endAfterSend half-closes the socket once everything is sent;
 * endIfSilentMs does when no answer has come by then, for a request whose
 * body may be shorter than it says (the server rightly waits for the rest).
 * Half-closing at once is no good for a complete request: Node aborts a
 * request still being handled when its client half-closes.
 */
export async function rawRequest(
  port: number,
  data: string | Buffer | (string | Buffer)[],
  opts: { timeoutMs?: number; endAfterSend?: boolean; endIfSilentMs?: number; method?: string } = {},
): Promise<RawAnswer> {
  const pieces = Array.isArray(data) ? data : [data];
  const first = pieces[0];
  const method = opts.method ?? (typeof first === 'string' ? first : (first?.toString('latin1') ?? '')).split(' ')[0]!;
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {}); // a reset after the answer is the server closing on a body it refused
  await new Promise((resolve) => socket.once('connect', resolve));
  let received = Buffer.alloc(0);
  let closed = false;
  const done = new Promise<Omit<RawAnswer, 'closed'> | null>((resolve) => {
    const timer = setTimeout(() => resolve(null), opts.timeoutMs ?? 5_000);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const answer = parseAnswer(received, method);
      if (answer) {
        clearTimeout(timer);
        resolve(answer);
      }
    });
    socket.on('close', () => {
      closed = true;
      clearTimeout(timer);
      resolve(parseAnswer(received, method) ?? parseToClose(received));
    });
  });
  for (const piece of pieces) {
    if (socket.destroyed) break;
    socket.write(piece);
    if (pieces.length > 1) await new Promise((resolve) => setTimeout(resolve, 5));
  }
  if (opts.endAfterSend) socket.end();
  const silence = opts.endIfSilentMs === undefined ? undefined : setTimeout(() => socket.end(), opts.endIfSilentMs);
  const answer = await done;
  clearTimeout(silence);
  // Give the server a moment to close a connection it means to close.
  if (answer && !closed && answer.headers.connection === 'close')
    await new Promise((resolve) => {
      socket.once('close', resolve);
      setTimeout(resolve, 1_000);
    });
  socket.destroy();
  assert.ok(answer, `no answer within ${opts.timeoutMs ?? 5_000} ms; got ${JSON.stringify(received.toString('latin1').slice(0, 200))}`);
  return { ...answer, closed };
}

function parseToClose(data: Buffer): Omit<RawAnswer, 'closed'> | null {
  const end = data.indexOf(HEAD_END, 0, 'latin1');
  if (end < 0) return null;
  const [statusLine, ...lines] = data.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) headers[line.slice(0, line.indexOf(':')).trim().toLowerCase()] = line.slice(line.indexOf(':') + 1).trim();
  return { status: Number(statusLine!.split(' ')[1]), headers, body: data.subarray(end + HEAD_END.length).toString('utf8'), interim: [] };
}

/** What no answer may carry: stack frames, source positions, host paths. */
const LEAKS: [string, RegExp][] = [
  ['a stack frame', /(?:\n|\\n)\s+at |\bat \S+ \(\S*:\d+:\d+\)/],
  ['a source position', /\.[cm]?[jt]s:\d+/],
  ['the repository path', new RegExp(process.cwd().replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))],
  ['a host path', /\/var\/lib\/brig|\/tmp\/|\/home\/|\/root\/|node_modules/],
];

/** sent: the request, whose own text an answer may quote (a refused file name "/tmp/x"). */
export function assertNoLeak(text: string, context: string, sent = ''): void {
  for (const [what, pattern] of LEAKS) {
    if (!pattern.test(sent)) assert.doesNotMatch(text, pattern, `${context}: the answer has ${what}`);
  }
}

/**
 * Every answer: no 5xx, and an error answer (4xx) has exactly the error body
 * with a registered code whose status it is. HEAD answers have no body to check.
 */
export function assertWellFormedAnswer(status: number, body: string, context: string, opts: { method?: string; sent?: string } = {}): void {
  const method = opts.method ?? 'GET';
  assert.ok(status >= 100 && status < 500, `${context}: status ${status}, body ${body.slice(0, 300)}`);
  assertNoLeak(body, context, opts.sent);
  if (status < 400 || method === 'HEAD') return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    assert.fail(`${context}: a ${status} answer without a JSON body: ${JSON.stringify(body.slice(0, 200))}`);
  }
  const { error } = parsed as { error: { code: string; message: unknown; field: unknown } };
  assert.deepEqual(Object.keys(parsed as object), ['error'], context);
  assert.deepEqual(Object.keys(error), ['code', 'message', 'field'], context);
  assert.ok(Object.hasOwn(ERROR_CODES, error.code), `${context}: unregistered code ${error.code}`);
  assert.equal(ERROR_CODES[error.code as ErrorCode].status, status, `${context}: ${error.code} with status ${status}`);
  assert.equal(typeof error.message, 'string', context);
  assert.ok(error.field === null || typeof error.field === 'string', context);
}

/** The error code of an error answer. */
export function codeOf(body: string): string {
  return (JSON.parse(body) as { error: { code: string } }).error.code;
}
