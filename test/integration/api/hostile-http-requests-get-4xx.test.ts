import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deflateSync, gzipSync } from 'node:zlib';
import { harnessForFile } from './harness.ts';
import { assertWellFormedAnswer, codeOf, rawRequest } from './raw-http.ts';

/**
 * Requests fetch cannot send, over a raw socket, row by row: each gets the
 * status and error code it names, with the error body and nothing of the
 * host in it. Before this, a malformed %XX in a path and a body that was not
 * the gzip it claimed were 500s, and a lying Content-Length got no answer.
 */

const BODY_LIMIT_BYTES = 4096;

const h = harnessForFile(
  { bodyLimitBytes: BODY_LIMIT_BYTES, rateLimitPerMinute: 0, queueCapacity: 1_000_000, clientMaxActiveRuns: 1_000_000 },
  (harness) => harness.heartbeat(),
);

const VALID = JSON.stringify({ language: 'python', source: 'print(1)' });

function get(path: string, method = 'GET', headers = ''): string {
  return `${method} ${path} HTTP/1.1\r\nHost: brig\r\n${headers}\r\n`;
}

function post(body: string | Buffer, headers: Record<string, string> = {}, path = '/v1/runs'): Buffer {
  const all = { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)), ...headers };
  const head = `POST ${path} HTTP/1.1\r\nHost: brig\r\n${Object.entries(all)
    .filter(([, v]) => v !== '')
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.isBuffer(body) ? body : Buffer.from(body)]);
}

interface Row {
  name: string;
  request: string | Buffer;
  status: number;
  code?: string;
  /** The server closes the connection after answering. */
  closes?: boolean;
  endAfterSend?: boolean;
}

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

const ROWS: Row[] = [
  // Paths: Express decodes route parameters with decodeURIComponent.
  { name: 'GET of a run id that is a lone %', request: get('/v1/runs/%'), status: 400, code: 'path_invalid' },
  { name: 'GET of a run id %ff (not UTF-8)', request: get('/v1/runs/%ff'), status: 400, code: 'path_invalid' },
  { name: 'GET of a run id %zz (not hex)', request: get('/v1/runs/%zz'), status: 400, code: 'path_invalid' },
  { name: 'GET of a run id %c0%ae (overlong UTF-8 for .)', request: get('/v1/runs/%c0%ae'), status: 400, code: 'path_invalid' },
  { name: 'GET of a run id %ed%a0%80 (an encoded lone surrogate)', request: get('/v1/runs/%ed%a0%80'), status: 400, code: 'path_invalid' },
  { name: 'DELETE of a run id %ff', request: get('/v1/runs/%ff', 'DELETE'), status: 400, code: 'path_invalid' },
  { name: 'events of a run id %ff', request: get('/v1/runs/%ff/events'), status: 400, code: 'path_invalid' },
  { name: 'events of a run id %', request: get('/v1/runs/%/events'), status: 400, code: 'path_invalid' },
  { name: 'HEAD of a run id %ff', request: get('/v1/runs/%ff', 'HEAD'), status: 400 },
  { name: 'a bad escape outside any route parameter', request: get('/v1/%ff'), status: 404, code: 'route_not_found' },
  { name: 'a bad escape in the query string', request: get('/v1/runs/abc?wait=%ff'), status: 404, code: 'run_not_found' },
  { name: 'a run id that decodes to ..', request: get('/v1/runs/%2e%2e'), status: 404, code: 'run_not_found' },
  { name: 'a run id that decodes to NUL', request: get('/v1/runs/%00'), status: 404, code: 'run_not_found' },
  { name: 'a run id of 8 KiB', request: get(`/v1/runs/${'a'.repeat(8192)}`), status: 404, code: 'run_not_found' },
  {
    name: 'a URL over the header limit',
    request: get(`/v1/runs/${'a'.repeat(20_000)}`),
    status: 431,
    code: 'headers_too_large',
    closes: true,
  },
  {
    name: 'a raw non-ASCII byte in the path',
    request: Buffer.from(get('/v1/runs/\u00e9'), 'latin1'),
    status: 400,
    code: 'request_malformed',
    closes: true,
  },
  { name: 'absolute-form request target', request: get('http://elsewhere.example/healthz'), status: 200 },
  { name: 'asterisk-form request target', request: get('*', 'OPTIONS'), status: 404, code: 'route_not_found' },
  // Methods and request lines.
  { name: 'OPTIONS of a route', request: get('/v1/runs', 'OPTIONS'), status: 405, code: 'method_not_allowed' },
  { name: 'PATCH of a route', request: get('/v1/runs/abc', 'PATCH'), status: 405, code: 'method_not_allowed' },
  { name: 'TRACE', request: get('/', 'TRACE'), status: 404, code: 'route_not_found' },
  { name: 'HEAD of a POST-only route', request: get('/v1/runs', 'HEAD'), status: 405 },
  { name: 'HEAD of /healthz', request: get('/healthz', 'HEAD'), status: 200 },
  {
    name: 'CONNECT',
    request: 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n',
    status: 405,
    code: 'method_not_allowed',
    closes: true,
  },
  { name: 'a method Node does not know', request: get('/healthz', 'BREW'), status: 400, code: 'request_malformed', closes: true },
  { name: 'a garbage request line', request: 'HELLO\r\n\r\n', status: 400, code: 'request_malformed', closes: true },
  {
    name: 'binary garbage',
    request: Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x0d, 0x0a, 0x0d, 0x0a]),
    status: 400,
    code: 'request_malformed',
    closes: true,
  },
  { name: 'an HTTP/2 preface', request: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', status: 400, code: 'request_malformed', closes: true },
  { name: 'HTTP/9.9', request: 'GET /healthz HTTP/9.9\r\nHost: brig\r\n\r\n', status: 400, code: 'request_malformed', closes: true },
  { name: 'HTTP/1.0 without Host', request: 'GET /healthz HTTP/1.0\r\n\r\n', status: 200 },
  { name: 'HTTP/1.1 without Host', request: 'GET /healthz HTTP/1.1\r\n\r\n', status: 400, code: 'request_malformed' },
  { name: 'bare LF line ends', request: 'GET /healthz HTTP/1.1\nHost: brig\n\n', status: 400, code: 'request_malformed', closes: true },
  // Headers.
  {
    name: 'a header over the header limit',
    request: get('/healthz', 'GET', `X-Big: ${'b'.repeat(20_000)}\r\n`),
    status: 431,
    code: 'headers_too_large',
    closes: true,
  },
  {
    name: 'a flood of 1,500 small headers within the limit',
    request: get('/healthz', 'GET', Array.from({ length: 1500 }, (_, i) => `X-${i}: v\r\n`).join('')),
    status: 200,
  },
  {
    name: 'a folded header (obs-fold)',
    request: get('/healthz', 'GET', 'X-A: a\r\n b\r\n'),
    status: 400,
    code: 'request_malformed',
    closes: true,
  },
  {
    name: 'a space before the colon',
    request: get('/healthz', 'GET', 'Host : brig\r\n'),
    status: 400,
    code: 'request_malformed',
    closes: true,
  },
  {
    name: 'a control character in a header value',
    request: get('/healthz', 'GET', 'X-A: a\u0001b\r\n'),
    status: 400,
    code: 'request_malformed',
    closes: true,
  },
  { name: 'an X-Request-Id of 10 KiB', request: get('/healthz', 'GET', `X-Request-Id: ${'r'.repeat(10_240)}\r\n`), status: 200 },
  {
    name: 'Upgrade: websocket on a plain route',
    request: get('/healthz', 'GET', 'Connection: Upgrade\r\nUpgrade: websocket\r\n'),
    status: 200,
  },
  { name: 'Expect other than 100-continue', request: post(VALID, { Expect: 'teapot' }), status: 417, code: 'expectation_unsupported' },
  // Body framing.
  {
    name: 'Content-Length: 99999999999 with a small body',
    request: post('{}', { 'Content-Length': '99999999999' }),
    status: 413,
    code: 'body_too_large',
    closes: true,
  },
  {
    name: 'Content-Length past 2^64',
    request: post('{}', { 'Content-Length': '999999999999999999999999999999' }),
    status: 400,
    code: 'request_malformed',
    closes: true,
  },
  {
    name: 'a negative Content-Length',
    request: post('{}', { 'Content-Length': '-1' }),
    status: 400,
    code: 'request_malformed',
    closes: true,
  },
  {
    name: 'two different Content-Lengths',
    request: post('{}', { 'Content-Length': '2\r\nContent-Length: 3' }),
    status: 400,
    code: 'request_malformed',
    closes: true,
  },
  {
    name: 'Content-Length and chunked together',
    request: post('2\r\n{}\r\n0\r\n\r\n', { 'Transfer-Encoding': 'chunked' }),
    status: 400,
    code: 'request_malformed',
    closes: true,
  },
  {
    name: 'a Content-Length longer than the body, then the client ends',
    request: post('{"lang', { 'Content-Length': '100' }),
    status: 400,
    code: 'request_malformed',
    closes: true,
    endAfterSend: true,
  },
  {
    name: 'a bad chunk size',
    request: post('zz\r\n{}\r\n0\r\n\r\n', { 'Content-Length': '', 'Transfer-Encoding': 'chunked' }),
    status: 400,
    code: 'request_malformed',
    closes: true,
  },
  {
    name: 'Transfer-Encoding: identity',
    request: post('{}', { 'Content-Length': '', 'Transfer-Encoding': 'identity' }),
    status: 400,
    code: 'request_malformed',
    closes: true,
  },
  {
    name: 'a chunk extension of 20 KiB',
    request: post(`2;${'e'.repeat(20_000)}\r\n{}\r\n0\r\n\r\n`, { 'Content-Length': '', 'Transfer-Encoding': 'chunked' }),
    status: 400,
    code: 'request_malformed',
    closes: true,
  },
  // Content encodings: body-parser answered 500 to a gzip or deflate body that was not.
  { name: 'gzip that is not gzip', request: post('hello', { 'Content-Encoding': 'gzip' }), status: 400, code: 'body_invalid_encoding' },
  {
    name: 'deflate that is not deflate',
    request: post('hello', { 'Content-Encoding': 'deflate' }),
    status: 400,
    code: 'body_invalid_encoding',
  },
  {
    name: 'truncated gzip',
    request: post(gzipSync(VALID).subarray(0, 20), { 'Content-Encoding': 'gzip' }),
    status: 400,
    code: 'body_invalid_encoding',
  },
  {
    name: 'gzip of bytes that are not JSON',
    request: post(gzipSync('not json'), { 'Content-Encoding': 'gzip' }),
    status: 400,
    code: 'body_invalid_json',
  },
  {
    name: 'a gzip bomb: 4 KiB over the limit once inflated',
    request: post(gzipSync(Buffer.alloc(BODY_LIMIT_BYTES * 256, 0x20)), { 'Content-Encoding': 'gzip' }),
    status: 413,
    code: 'body_too_large',
  },
  { name: 'br', request: post('hello', { 'Content-Encoding': 'br' }), status: 415, code: 'content_encoding_unsupported' },
  {
    name: 'gzip twice',
    request: post(gzipSync(gzipSync(VALID)), { 'Content-Encoding': 'gzip, gzip' }),
    status: 415,
    code: 'content_encoding_unsupported',
  },
  {
    name: 'an unknown encoding',
    request: post(VALID, { 'Content-Encoding': 'x-unknown' }),
    status: 415,
    code: 'content_encoding_unsupported',
  },
  { name: 'a valid gzip body', request: post(gzipSync(VALID), { 'Content-Encoding': 'gzip' }), status: 202 },
  { name: 'a valid deflate body, encoding in capitals', request: post(deflateSync(VALID), { 'Content-Encoding': 'DEFLATE' }), status: 202 },
  // Content types and charsets.
  {
    name: 'charset=utf-16',
    request: post(Buffer.from(VALID, 'utf16le'), { 'Content-Type': 'application/json; charset=utf-16' }),
    status: 415,
    code: 'content_type_unsupported',
  },
  {
    name: 'charset=latin1',
    request: post(VALID, { 'Content-Type': 'application/json; charset=latin1' }),
    status: 415,
    code: 'content_type_unsupported',
  },
  {
    name: 'charset="UTF-8", quoted and in capitals',
    request: post(VALID, { 'Content-Type': 'application/json; charset="UTF-8"' }),
    status: 202,
  },
  {
    name: 'a Content-Type of ;;;',
    request: post(VALID, { 'Content-Type': 'application/json;;;' }),
    status: 415,
    code: 'content_type_unsupported',
  },
  {
    name: 'two Content-Types (Node keeps the first)',
    request: post(VALID, { 'Content-Type': 'text/plain\r\nContent-Type: application/json' }),
    status: 415,
    code: 'content_type_unsupported',
  },
  {
    name: 'bytes that are not UTF-8',
    request: post(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])),
    status: 400,
    code: 'body_invalid_json',
  },
  { name: 'a UTF-8 byte order mark', request: post(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(VALID)])), status: 202 },
  // JSON that is not a run.
  { name: 'an empty body', request: post(''), status: 400, code: 'body_invalid_json' },
  { name: 'a JSON number', request: post('5'), status: 400, code: 'request_invalid' },
  { name: 'JSON null', request: post('null'), status: 400, code: 'request_invalid' },
  { name: 'a JSON string', request: post('"x"'), status: 400, code: 'request_invalid' },
  { name: 'a JSON array', request: post('[]'), status: 400, code: 'request_invalid' },
  { name: 'arrays nested 2,000 deep', request: post(nested(2000)), status: 400, code: 'request_invalid' },
  {
    name: 'arrays nested 1,500 deep in args',
    request: post(`{"language":"python","source":"x","args":${nested(1500)}}`),
    status: 400,
    code: 'request_invalid',
  },
  { name: 'a __proto__ key', request: post('{"__proto__":{"language":"python"},"source":"x"}'), status: 400, code: 'request_invalid' },
  {
    name: 'a constructor key',
    request: post('{"language":"python","source":"x","constructor":{"prototype":{}}}'),
    status: 400,
    code: 'request_invalid',
  },
  {
    name: 'a limit of 1e400 (Infinity)',
    request: post('{"language":"python","source":"x","limits":{"cpuMs":1e400}}'),
    status: 400,
    code: 'request_invalid',
  },
  {
    name: 'a limit past the safe integers',
    request: post('{"language":"python","source":"x","limits":{"cpuMs":9007199254740993}}'),
    status: 400,
    code: 'request_invalid',
  },
  {
    name: 'a limit of 1e15',
    request: post('{"language":"python","source":"x","limits":{"cpuMs":1e15}}'),
    status: 400,
    code: 'limit_over_maximum',
  },
  {
    name: 'a limit of -0',
    request: post('{"language":"python","source":"x","limits":{"wallMs":-0}}'),
    status: 400,
    code: 'request_invalid',
  },
  {
    name: 'a limit of "NaN"',
    request: post('{"language":"python","source":"x","limits":{"memoryMb":"NaN"}}'),
    status: 400,
    code: 'request_invalid',
  },
  { name: 'a tolerance of 1e-400', request: post('{"language":"python","source":"x","compare":{"float":1e-400}}'), status: 202 },
  { name: 'duplicate keys (the last one wins)', request: post('{"language":"cobol","language":"python","source":"x"}'), status: 202 },
  {
    name: 'an escaped lone surrogate in a file name',
    request: post('{"language":"c","files":[{"name":"\\ud800","content":""},{"name":"\\udc00","content":""}]}'),
    status: 400,
    code: 'file_name_invalid',
  },
  // Query strings (the simple parser: no objects).
  { name: '?wait[]=1 (an unknown parameter, ignored)', request: post(VALID, {}, '/v1/runs?wait[]=1'), status: 202 },
  { name: '?wait=1&wait=1 (an array)', request: post(VALID, {}, '/v1/runs?wait=1&wait=1'), status: 400, code: 'request_invalid' },
  { name: '?wait=%ff', request: post(VALID, {}, '/v1/runs?wait=%ff'), status: 400, code: 'request_invalid' },
  { name: '?__proto__=x', request: post(VALID, {}, '/v1/runs?__proto__=x&constructor=y'), status: 202 },
];

for (const row of ROWS) {
  test(`${row.name} → ${row.status}${row.code ? ` ${row.code}` : ''}`, async () => {
    const sent = Buffer.isBuffer(row.request) ? row.request : Buffer.from(row.request, 'latin1');
    const method = sent.subarray(0, 16).toString('latin1').split(' ')[0];
    const answer = await rawRequest(h.port, sent, { endAfterSend: row.endAfterSend, method });
    assertWellFormedAnswer(answer.status, answer.body, row.name, { method, sent: sent.toString('latin1') });
    assert.equal(answer.status, row.status, answer.body);
    if (row.code) assert.equal(codeOf(answer.body), row.code, answer.body);
    if (row.closes) assert.ok(answer.closed, 'the connection is closed');
  });
}

test('/healthz answers 200 after all that, and nothing crashed', async () => {
  const res = await h.fetch('/healthz');
  assert.equal(res.status, 200);
});
