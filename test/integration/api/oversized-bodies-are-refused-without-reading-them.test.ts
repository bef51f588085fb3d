import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { harnessForFile } from './harness.ts';
import { assertWellFormedAnswer, codeOf, parseAnswer, rawRequest } from './raw-http.ts';

/**
 * A body over BRIG_BODY_LIMIT_BYTES is refused from its Content-Length before
 * a byte of it is read, and one that turns out too large while arriving
 * stops being read at the limit: 413 with Connection: close, and the socket
 * closed while the client is still sending. Before, a Content-Length of
 * 99999999999 got no answer at all and a 50 MB upload was read whole before
 * its 413.
 */

const BODY_LIMIT_BYTES = 64 * 1024;
const UPLOAD_BYTES = 50 * 1024 * 1024;
const CHUNK_BYTES = 64 * 1024;
/**
 * What the client can have written when the server stops reading: the limit
 * plus what the loopback's socket buffers hold (a few MiB each way). Well
 * under the whole upload.
 */
const MAX_WRITTEN_AFTER_REFUSAL_BYTES = 24 * 1024 * 1024;
const VALID = JSON.stringify({ language: 'python', source: 'print(1)' });

const h = harnessForFile(
  { bodyLimitBytes: BODY_LIMIT_BYTES, rateLimitPerMinute: 0, queueCapacity: 1_000_000, clientMaxActiveRuns: 1_000_000 },
  (harness) => harness.heartbeat(),
);

function head(headers: Record<string, string>, path = '/v1/runs'): string {
  return `POST ${path} HTTP/1.1\r\nHost: brig\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
}

interface Upload {
  status: number;
  headers: Record<string, string>;
  body: string;
  interim: number[];
  writtenBytes: number;
  closed: boolean;
  msToAnswer: number;
}

/** Sends the head, then the body as fast as the socket takes it, until all of it is sent or the server closes. */
async function upload(headText: string, totalBytes: number, frame: (chunk: Buffer) => Buffer = (c) => c, trailer = ''): Promise<Upload> {
  const socket: Socket = connect(h.port, '127.0.0.1');
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('connect', resolve));
  let received = Buffer.alloc(0);
  let closed = false;
  const started = Date.now();
  let msToAnswer = -1;
  socket.on('data', (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    if (msToAnswer < 0 && parseAnswer(received, 'POST')) msToAnswer = Date.now() - started;
  });
  const closing = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closed = true;
      resolve();
    }),
  );
  socket.write(headText);
  const chunk = Buffer.alloc(CHUNK_BYTES, 0x20);
  let writtenBytes = 0;
  while (writtenBytes < totalBytes && !closed && !socket.destroyed) {
    const more = socket.write(frame(chunk));
    writtenBytes += chunk.length;
    if (!more) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), closing]);
  }
  if (!closed && trailer) socket.write(trailer);
  await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, 5_000))]);
  socket.destroy();
  const answer = parseAnswer(received, 'POST');
  assert.ok(answer, `no answer; got ${JSON.stringify(received.toString('latin1').slice(0, 200))}`);
  return { ...answer, writtenBytes, closed, msToAnswer };
}

function assertRefusedAndClosed(result: Upload, code: string): void {
  assertWellFormedAnswer(result.status, result.body, code);
  assert.equal(codeOf(result.body), code, result.body);
  assert.equal(result.headers.connection, 'close');
  assert.ok(result.closed, 'the server closed the connection');
}

test('a Content-Length over the limit is answered 413 from the headers, before a byte of the body is sent', async () => {
  const answer = await rawRequest(h.port, head({ 'Content-Type': 'application/json', 'Content-Length': '99999999999' }), {
    timeoutMs: 2_000,
  });
  assert.equal(answer.status, 413);
  assert.equal(codeOf(answer.body), 'body_too_large');
  assert.match(answer.body, new RegExp(`limit of ${BODY_LIMIT_BYTES} bytes`));
  assert.equal(answer.headers.connection, 'close');
  assert.ok(answer.closed);
});

test('with Expect: 100-continue, an oversized body is refused without a 100 Continue, so the client never sends it', async () => {
  const answer = await rawRequest(
    h.port,
    head({ 'Content-Type': 'application/json', 'Content-Length': String(UPLOAD_BYTES), Expect: '100-continue' }),
    { timeoutMs: 2_000 },
  );
  assert.deepEqual(answer.interim, []);
  assert.equal(answer.status, 413);
  assert.ok(answer.closed);
});

test('with Expect: 100-continue, a body within the limit gets its 100 Continue and then its answer', async () => {
  const socket = connect(h.port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  let received = Buffer.alloc(0);
  const continued = new Promise<void>((resolve) =>
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.toString('latin1').startsWith('HTTP/1.1 100 ')) resolve();
    }),
  );
  socket.write(head({ 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(VALID)), Expect: '100-continue' }));
  await continued;
  socket.write(VALID);
  for (let i = 0; i < 100 && !parseAnswer(received, 'POST'); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  socket.destroy();
  const answer = parseAnswer(received, 'POST');
  assert.deepEqual(answer?.interim, [100]);
  assert.equal(answer?.status, 202, answer?.body);
});

test('a 50 MiB upload with an honest Content-Length is refused at once, and the server stops reading it', async () => {
  const result = await upload(head({ 'Content-Type': 'application/json', 'Content-Length': String(UPLOAD_BYTES) }), UPLOAD_BYTES);
  assert.equal(result.status, 413);
  assertRefusedAndClosed(result, 'body_too_large');
  assert.ok(result.writtenBytes < MAX_WRITTEN_AFTER_REFUSAL_BYTES, `the client got ${result.writtenBytes} bytes out before the close`);
});

test('a chunked upload past the limit stops being read at the limit: 413, Connection: close, the socket closed mid-upload', async () => {
  const chunked = (chunk: Buffer) => Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
  const result = await upload(
    head({ 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }),
    UPLOAD_BYTES,
    chunked,
    '0\r\n\r\n',
  );
  assert.equal(result.status, 413);
  assertRefusedAndClosed(result, 'body_too_large');
  assert.ok(result.writtenBytes < MAX_WRITTEN_AFTER_REFUSAL_BYTES, `the client got ${result.writtenBytes} bytes out before the close`);
});

test('a body refused before it is read (wrong content type) closes the connection rather than being drained', async () => {
  const result = await upload(
    head({ 'Content-Type': 'text/plain', 'Content-Length': String(BODY_LIMIT_BYTES / 2 + UPLOAD_BYTES) }),
    UPLOAD_BYTES,
  );
  assert.equal(result.status, 415);
  assertRefusedAndClosed(result, 'content_type_unsupported');
  assert.ok(result.writtenBytes < MAX_WRITTEN_AFTER_REFUSAL_BYTES, `the client got ${result.writtenBytes} bytes out before the close`);
});

test('a body sent to a route that takes none is not read: the answer comes, then the connection closes', async () => {
  const result = await upload(`GET /healthz HTTP/1.1\r\nHost: brig\r\nContent-Length: ${UPLOAD_BYTES}\r\n\r\n`, UPLOAD_BYTES);
  assert.equal(result.status, 200);
  assert.equal(result.headers.connection, 'close');
  assert.ok(result.closed, 'the server closed the connection');
  assert.ok(result.writtenBytes < MAX_WRITTEN_AFTER_REFUSAL_BYTES, `the client got ${result.writtenBytes} bytes out before the close`);
});

test('a body refused after it was read whole keeps the connection for the next request', async () => {
  const body = '{"language": 5}';
  const socket = connect(h.port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  let received = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
  });
  socket.write(head({ 'Content-Type': 'application/json', 'Content-Length': String(body.length) }) + body);
  for (let i = 0; i < 100 && !parseAnswer(received, 'POST'); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  const first = parseAnswer(received, 'POST');
  assert.equal(first?.status, 400);
  assert.notEqual(first?.headers.connection, 'close');
  received = Buffer.alloc(0);
  socket.write('GET /healthz HTTP/1.1\r\nHost: brig\r\n\r\n');
  for (let i = 0; i < 100 && !parseAnswer(received, 'GET'); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  socket.destroy();
  assert.equal(parseAnswer(received, 'GET')?.status, 200);
});

test('/healthz answers 200 after the uploads', async () => {
  assert.equal((await h.fetch('/healthz')).status, 200);
});
