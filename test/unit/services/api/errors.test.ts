import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toServiceError } from '../../../../services/api/middleware/errors.ts';
import { RequestError, SandboxError } from '../../../../runtime/errors.ts';
import { resolveLimits } from '../../../../runtime/limits.ts';
import { checkFiles } from '../../../../runtime/workspace/files.ts';
import { loadRuntimeConfig } from '../../../../services/shared/config.ts';
import { ERROR_CODES, ServiceError, statusOf } from '../../../../services/shared/errors.ts';

test('every code has an HTTP error status and a description', () => {
  for (const [code, { status, description }] of Object.entries(ERROR_CODES)) {
    assert.match(code, /^[a-z]+(_[a-z0-9]+)*$/, code);
    assert.ok(status >= 400 && status <= 599, code);
    assert.ok(description.length > 10, code);
  }
});

test('the statuses the API promises', () => {
  const expected: Record<string, number> = {
    request_invalid: 400, body_invalid_json: 400, body_too_large: 413, content_type_unsupported: 415, unauthorized: 401,
    rate_limited: 429, queue_full: 503, language_unknown: 400, limit_over_maximum: 400, file_name_invalid: 400,
    file_name_duplicate: 400, files_too_many: 400, tests_too_many: 400, content_invalid_base64: 400, run_not_found: 404,
    run_expired: 404, internal_error: 500,
  };
  for (const [code, status] of Object.entries(expected)) assert.equal(statusOf(code as keyof typeof ERROR_CODES), status, code);
});

test('the runtime\'s request checks have registered codes, so they reach the caller as they are', () => {
  const config = loadRuntimeConfig({});
  const thrown: unknown[] = [];
  const collect = (fn: () => unknown) => { try { fn(); } catch (error) { thrown.push(error); } };
  collect(() => resolveLimits({ cpuMs: 1e9 }, undefined, config.defaults, config.maxima));
  collect(() => resolveLimits({ cpuMs: -1 }, undefined, config.defaults, config.maxima));
  collect(() => checkFiles([{ name: '../x', content: Buffer.alloc(0) }]));
  collect(() => checkFiles([{ name: 'a', content: Buffer.alloc(0) }, { name: 'a', content: Buffer.alloc(0) }]));
  collect(() => checkFiles([{ name: 'a', content: Buffer.alloc(0) }, { name: 'a/b', content: Buffer.alloc(0) }]));
  assert.equal(thrown.length, 5);
  for (const error of thrown) {
    const answer = toServiceError(error);
    assert.equal(answer.code, (error as RequestError).code);
    assert.equal(answer.field, (error as RequestError).field);
    assert.equal(statusOf(answer.code), 400);
  }
});

test('anything else is internal_error, without its message', () => {
  for (const error of [new Error('ECONNRESET at /srv/secret'), new SandboxError('mount_failed', 'mount /var/lib/brig failed'), 'a string', null]) {
    const answer = toServiceError(error);
    assert.equal(answer.code, 'internal_error');
    assert.doesNotMatch(answer.message, /secret|mount|ECONN/);
  }
});

test('body parser errors map to their codes', () => {
  const parse = Object.assign(new Error('Unexpected token'), { type: 'entity.parse.failed' });
  const large = Object.assign(new Error('too large'), { type: 'entity.too.large', limit: 100 });
  assert.equal(toServiceError(parse).code, 'body_invalid_json');
  assert.equal(toServiceError(large).code, 'body_too_large');
  assert.match(toServiceError(large).message, /100 bytes/);
});

test('a service error passes through with its Retry-After', () => {
  const error = new ServiceError('queue_full', 'full', { retryAfterSeconds: 5 });
  assert.equal(toServiceError(error), error);
});
