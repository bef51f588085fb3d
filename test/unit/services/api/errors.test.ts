import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { type RequestError, SandboxError } from '../../../../runtime/errors.ts';
import { resolveLimits } from '../../../../runtime/limits.ts';
import { checkFiles } from '../../../../runtime/workspace/files.ts';
import { clientErrorHandler, toServiceError } from '../../../../services/api/middleware/errors.ts';
import { loadRuntimeConfig } from '../../../../services/shared/config.ts';
import { ERROR_CODES, ServiceError, statusOf } from '../../../../services/shared/errors.ts';
import { createLogger } from '../../../../services/shared/logger.ts';

test('every code has an HTTP error status and a description', () => {
  for (const [code, { status, description }] of Object.entries(ERROR_CODES)) {
    assert.match(code, /^[a-z]+(_[a-z0-9]+)*$/, code);
    assert.ok(status >= 400 && status <= 599, code);
    assert.ok(description.length > 10, code);
  }
});

test('the statuses the API promises', () => {
  const expected: Record<string, number> = {
    request_invalid: 400,
    body_invalid_json: 400,
    body_too_large: 413,
    content_type_unsupported: 415,
    unauthorized: 401,
    rate_limited: 429,
    queue_full: 503,
    language_unknown: 400,
    limit_over_maximum: 400,
    file_name_invalid: 400,
    file_name_duplicate: 400,
    files_too_many: 400,
    tests_too_many: 400,
    content_invalid_base64: 400,
    run_not_found: 404,
    run_expired: 404,
    internal_error: 500,
    path_invalid: 400,
    body_invalid_encoding: 400,
    content_encoding_unsupported: 415,
    request_malformed: 400,
    request_timeout: 408,
    headers_too_large: 431,
    expectation_unsupported: 417,
  };
  for (const [code, status] of Object.entries(expected)) assert.equal(statusOf(code as keyof typeof ERROR_CODES), status, code);
});

test("the runtime's request checks have registered codes, so they reach the caller as they are", () => {
  const config = loadRuntimeConfig({});
  const thrown: unknown[] = [];
  const collect = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      thrown.push(error);
    }
  };
  collect(() => resolveLimits({ cpuMs: 1e9 }, config.defaults, config.maxima));
  collect(() => resolveLimits({ cpuMs: -1 }, config.defaults, config.maxima));
  collect(() => checkFiles([{ name: '../x', content: Buffer.alloc(0) }]));
  collect(() =>
    checkFiles([
      { name: 'a', content: Buffer.alloc(0) },
      { name: 'a', content: Buffer.alloc(0) },
    ]),
  );
  collect(() =>
    checkFiles([
      { name: 'a', content: Buffer.alloc(0) },
      { name: 'a/b', content: Buffer.alloc(0) },
    ]),
  );
  assert.equal(thrown.length, 5);
  for (const error of thrown) {
    const answer = toServiceError(error);
    assert.equal(answer.code, (error as RequestError).code);
    assert.equal(answer.field, (error as RequestError).field);
    assert.equal(statusOf(answer.code), 400);
  }
});

test('anything else is internal_error, without its message', () => {
  for (const error of [
    new Error('ECONNRESET at /srv/secret'),
    new SandboxError('mount_failed', 'mount /var/lib/brig failed'),
    'a string',
    null,
  ]) {
    const answer = toServiceError(error);
    assert.equal(answer.code, 'internal_error');
    assert.doesNotMatch(answer.message, /secret|mount|ECONN/);
  }
});

test("Express's URIError for a malformed %XX in a route parameter is path_invalid, without the raw parameter", () => {
  // As Express 4's Layer decode_param leaves it.
  const error = Object.assign(new URIError("Failed to decode param '%ff/secret'"), { status: 400, statusCode: 400 });
  const answer = toServiceError(error);
  assert.equal(answer.code, 'path_invalid');
  assert.equal(statusOf(answer.code), 400);
  assert.doesNotMatch(answer.message, /secret/);
  assert.equal(toServiceError(new URIError('URI malformed')).code, 'internal_error', 'only the one Express marked as a client error');
});

test("a request Node's parser refuses is answered with the error body, raw, and the connection ends", async () => {
  const answerTo = async (error: Error & { code?: string; reason?: string }) => {
    const socket = new PassThrough();
    let written = '';
    socket.on('data', (chunk: Buffer) => {
      written += chunk.toString();
    });
    const ended = new Promise((resolve) => socket.once('close', resolve));
    clientErrorHandler(createLogger({ level: 'silent', name: 'test' }))(error, socket);
    await ended;
    const [head, body] = written.split('\r\n\r\n') as [string, string];
    assert.match(head, /Connection: close/);
    assert.equal(Number(/Content-Length: (\d+)/.exec(head)?.[1]), Buffer.byteLength(body));
    return { status: Number(head.split(' ')[1]), body: JSON.parse(body) as { error: { code: string; message: string; field: null } } };
  };
  const garbage = await answerTo(
    Object.assign(new Error('Parse Error: Invalid method encountered'), {
      code: 'HPE_INVALID_METHOD',
      reason: 'Invalid method encountered',
    }),
  );
  assert.equal(garbage.status, 400);
  assert.deepEqual(Object.keys(garbage.body.error), ['code', 'message', 'field']);
  assert.equal(garbage.body.error.code, 'request_malformed');
  assert.match(garbage.body.error.message, /Invalid method encountered/);
  assert.equal(
    (await answerTo(Object.assign(new Error('Header overflow'), { code: 'HPE_HEADER_OVERFLOW' }))).body.error.code,
    'headers_too_large',
  );
  assert.equal((await answerTo(Object.assign(new Error('timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }))).status, 408);
});

test('a service error passes through with its Retry-After', () => {
  const error = new ServiceError('queue_full', 'full', { retryAfterSeconds: 5 });
  assert.equal(toServiceError(error), error);
});
