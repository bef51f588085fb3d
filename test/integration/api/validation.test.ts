import assert from 'node:assert/strict';
import { test } from 'node:test';
import { harnessForFile } from './harness.ts';

/**
 * Bad input, row by row: the exact status, error code and field, and that
 * nothing else happens (no record written, nothing queued).
 */
const MAX_FILES = 3;
const MAX_TESTS = 2;
const BODY_LIMIT_BYTES = 4096;

const h = harnessForFile({ maxFiles: MAX_FILES, maxTests: MAX_TESTS, bodyLimitBytes: BODY_LIMIT_BYTES, rateLimitPerMinute: 0 }, (harness) =>
  harness.heartbeat(['python', 'c', 'brainfuck']),
);

const py = (extra: Record<string, unknown>) => ({ language: 'python', source: 'print(1)', ...extra });
const file = (name: string, content = 'x', encoding?: string) => ({ name, content, ...(encoding ? { encoding } : {}) });
const withFiles = (...files: unknown[]) => ({ language: 'c', files });

interface Row {
  name: string;
  body: unknown;
  status: number;
  code: string;
  field: string | null;
  message?: RegExp;
}

const ROWS: Row[] = [
  {
    name: 'missing language',
    body: { source: 'x' },
    status: 400,
    code: 'request_invalid',
    field: 'language',
    message: /language: is required/,
  },
  {
    name: 'language of the wrong type',
    body: { language: 5, source: 'x' },
    status: 400,
    code: 'request_invalid',
    field: 'language',
    message: /must be a string, not a number/,
  },
  {
    name: 'language that is not a name',
    body: { language: 'Py thon', source: 'x' },
    status: 400,
    code: 'request_invalid',
    field: 'language',
  },
  { name: 'unknown field', body: py({ stdIn: 'x' }), status: 400, code: 'request_invalid', field: 'stdIn', message: /not a known field/ },
  {
    name: 'a body that is not an object',
    body: [1, 2],
    status: 400,
    code: 'request_invalid',
    field: null,
    message: /must be an object, not an array/,
  },
  { name: 'neither source nor files', body: { language: 'python' }, status: 400, code: 'source_missing', field: null },
  {
    name: 'both source and files',
    body: { ...withFiles(file('main.c')), source: 'x' },
    status: 400,
    code: 'source_conflict',
    field: 'source',
  },
  { name: 'empty files', body: withFiles(), status: 400, code: 'request_invalid', field: 'files', message: /at least 1 item/ },
  {
    name: 'file name with ..',
    body: withFiles(file('../etc/passwd')),
    status: 400,
    code: 'file_name_invalid',
    field: 'files[0].name',
    message: /\.\./,
  },
  {
    name: 'file name with a leading /',
    body: withFiles(file('/etc/passwd')),
    status: 400,
    code: 'file_name_invalid',
    field: 'files[0].name',
    message: /relative/,
  },
  {
    name: 'file name with NUL',
    body: withFiles(file('a\u0000b.c')),
    status: 400,
    code: 'file_name_invalid',
    field: 'files[0].name',
    message: /NUL or a control character/,
  },
  {
    name: 'file name with a control character',
    body: withFiles(file('a\nb.c')),
    status: 400,
    code: 'file_name_invalid',
    field: 'files[0].name',
  },
  {
    name: 'bad name of the third file',
    body: withFiles(file('a.c'), file('b.c'), file('x/../../c.c')),
    status: 400,
    code: 'file_name_invalid',
    field: 'files[2].name',
  },
  {
    name: 'file name of the wrong type',
    body: withFiles({ name: 7, content: '' }),
    status: 400,
    code: 'request_invalid',
    field: 'files[0].name',
  },
  {
    name: 'duplicate file names',
    body: withFiles(file('main.c'), file('main.c')),
    status: 400,
    code: 'file_name_duplicate',
    field: 'files[1].name',
  },
  {
    name: 'a file that is also a directory',
    body: withFiles(file('lib'), file('lib/a.c')),
    status: 400,
    code: 'file_name_conflict',
    field: 'files',
  },
  {
    name: 'too many files',
    body: withFiles(file('a.c'), file('b.c'), file('c.c'), file('d.c')),
    status: 400,
    code: 'files_too_many',
    field: 'files',
    message: /at most 3/,
  },
  {
    name: 'too many tests',
    body: py({ tests: [{ expectedOutput: '1' }, { expectedOutput: '2' }, { expectedOutput: '3' }] }),
    status: 400,
    code: 'tests_too_many',
    field: 'tests',
    message: /at most 2/,
  },
  {
    name: 'test without expectedOutput',
    body: py({ tests: [{ expectedOutput: '1' }, { stdin: '2' }] }),
    status: 400,
    code: 'request_invalid',
    field: 'tests[1].expectedOutput',
  },
  {
    name: 'base64 with a character outside the alphabet',
    body: withFiles(file('main.c', 'aGk*', 'base64')),
    status: 400,
    code: 'content_invalid_base64',
    field: 'files[0].content',
  },
  {
    name: 'base64 without padding',
    body: withFiles(file('main.c', 'aGk', 'base64')),
    status: 400,
    code: 'content_invalid_base64',
    field: 'files[0].content',
  },
  {
    name: 'base64 with padding bits set',
    body: withFiles(file('main.c', 'aGl=', 'base64')),
    status: 400,
    code: 'content_invalid_base64',
    field: 'files[0].content',
  },
  {
    name: 'base64 with a line break',
    body: withFiles(file('main.c', 'aGVs\nbG8=', 'base64')),
    status: 400,
    code: 'content_invalid_base64',
    field: 'files[0].content',
  },
  {
    name: 'base64 with padding in the middle',
    body: withFiles(file('main.c', 'aGk=aGk=', 'base64')),
    status: 400,
    code: 'content_invalid_base64',
    field: 'files[0].content',
  },
  {
    name: 'unknown encoding',
    body: withFiles(file('main.c', '6869', 'hex')),
    status: 400,
    code: 'request_invalid',
    field: 'files[0].encoding',
    message: /"utf8", "base64"/,
  },
  {
    name: 'cpuMs over the maximum',
    body: py({ limits: { cpuMs: 999_999 } }),
    status: 400,
    code: 'limit_over_maximum',
    field: 'limits.cpuMs',
    message: /maximum of 30000/,
  },
  {
    name: 'memoryMb over the maximum',
    body: py({ limits: { memoryMb: 4096 } }),
    status: 400,
    code: 'limit_over_maximum',
    field: 'limits.memoryMb',
    message: /maximum of 2048/,
  },
  {
    name: 'negative limit',
    body: py({ limits: { wallMs: -1 } }),
    status: 400,
    code: 'request_invalid',
    field: 'limits.wallMs',
    message: /greater than 0/,
  },
  {
    name: 'fractional limit',
    body: py({ limits: { processes: 1.5 } }),
    status: 400,
    code: 'request_invalid',
    field: 'limits.processes',
    message: /integer/,
  },
  {
    name: 'a limit the caller may not set',
    body: py({ limits: { diskMb: 10 } }),
    status: 400,
    code: 'request_invalid',
    field: 'limits.diskMb',
  },
  {
    name: 'unknown compare mode',
    body: py({ compare: 'fuzzy' }),
    status: 400,
    code: 'request_invalid',
    field: 'compare',
    message: /"exact", "trim", "tokens"/,
  },
  {
    name: 'negative float tolerance',
    body: py({ compare: { float: -1 } }),
    status: 400,
    code: 'request_invalid',
    field: 'compare.float',
    message: /at least 0/,
  },
  { name: 'an argument that is not a string', body: py({ args: ['a', 1] }), status: 400, code: 'request_invalid', field: 'args[1]' },
  {
    name: 'an argument with NUL',
    body: py({ args: ['a\u0000b'] }),
    status: 400,
    code: 'request_invalid',
    field: 'args[0]',
    message: /NUL/,
  },
  {
    name: 'a callback that is not http',
    body: py({ callbackUrl: 'ftp://example.com/x' }),
    status: 400,
    code: 'request_invalid',
    field: 'callbackUrl',
  },
  // Lone surrogates have no UTF-8 form: they used to become U+FFFD on the way to the worker, and two such file names one file.
  {
    name: 'file name with a lone high surrogate',
    body: withFiles(file('a.c'), file('\ud800')),
    status: 400,
    code: 'file_name_invalid',
    field: 'files[1].name',
    message: /lone surrogate/,
  },
  {
    name: 'file name with a lone low surrogate',
    body: withFiles(file('x\udc00.c')),
    status: 400,
    code: 'file_name_invalid',
    field: 'files[0].name',
    message: /lone surrogate/,
  },
  {
    name: 'file name in NFD',
    body: withFiles(file('cafe\u0301.c')),
    status: 400,
    code: 'file_name_invalid',
    field: 'files[0].name',
    message: /NFC/,
  },
  {
    name: 'the NFD twin of another file',
    body: withFiles(file('caf\u00e9.c'), file('cafe\u0301.c')),
    status: 400,
    code: 'file_name_invalid',
    field: 'files[1].name',
    message: /NFC/,
  },
  {
    name: 'source with a lone surrogate',
    body: py({ source: 'print("\ud83d")' }),
    status: 400,
    code: 'request_invalid',
    field: 'source',
    message: /lone surrogate/,
  },
  {
    name: 'stdin with a lone surrogate',
    body: py({ stdin: '\udfff' }),
    status: 400,
    code: 'request_invalid',
    field: 'stdin',
    message: /lone surrogate/,
  },
  {
    name: 'utf8 file content with a lone surrogate',
    body: withFiles(file('main.c', 'x\ud800')),
    status: 400,
    code: 'request_invalid',
    field: 'files[0].content',
    message: /lone surrogate/,
  },
  {
    name: 'an argument with a lone surrogate',
    body: py({ args: ['ok', '\ud800'] }),
    status: 400,
    code: 'request_invalid',
    field: 'args[1]',
    message: /lone surrogate/,
  },
  {
    name: 'a test name with a lone surrogate',
    body: py({ tests: [{ name: '\udc00', expectedOutput: '1' }] }),
    status: 400,
    code: 'request_invalid',
    field: 'tests[0].name',
  },
  {
    name: 'expected output with a lone surrogate',
    body: py({ tests: [{ expectedOutput: '\ud800' }] }),
    status: 400,
    code: 'request_invalid',
    field: 'tests[0].expectedOutput',
    message: /lone surrogate/,
  },
  {
    name: 'a callback URL with a lone surrogate',
    body: py({ callbackUrl: 'https://example.com/\ud800' }),
    status: 400,
    code: 'request_invalid',
    field: 'callbackUrl',
  },
  {
    name: 'unknown language',
    body: { language: 'cobol', source: 'x' },
    status: 400,
    code: 'language_unknown',
    field: 'language',
    message: /available: brainfuck, c, python/,
  },
  {
    name: 'source for a language without a known file name',
    body: { language: 'brainfuck', source: '+' },
    status: 400,
    code: 'source_unsupported',
    field: 'source',
  },
];

async function assertNothingHappened(): Promise<void> {
  assert.deepEqual(await h.redis.keys('brig:run:*'), [], 'no run record is written');
  const counts = await h.queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized', 'completed', 'failed');
  assert.equal(
    Object.values(counts).reduce((a, b) => a + b, 0),
    0,
    'nothing is queued',
  );
}

for (const row of ROWS) {
  test(`bad input: ${row.name} → ${row.status} ${row.code} at ${row.field}`, async () => {
    const res = await h.fetch('/v1/runs', { json: row.body });
    const body = (await res.json()) as { error: { code: string; message: string; field: string | null } };
    assert.equal(res.status, row.status, JSON.stringify(body));
    assert.deepEqual(Object.keys(body), ['error']);
    assert.equal(body.error.code, row.code, body.error.message);
    assert.equal(body.error.field, row.field, body.error.message);
    if (row.message) assert.match(body.error.message, row.message);
    assert.doesNotMatch(body.error.message, /\n\s+at /, 'no stack');
  });
}

test('malformed JSON → 400 body_invalid_json', async () => {
  const res = await h.fetch('/v1/runs', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"language": "python", ',
  });
  assert.equal(res.status, 400);
  const body = (await res.json()) as { error: { code: string; field: null } };
  assert.equal(body.error.code, 'body_invalid_json');
  assert.equal(body.error.field, null);
});

test('a non-JSON content type → 415 content_type_unsupported', async () => {
  const res = await h.fetch('/v1/runs', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify(py({})) });
  assert.equal(res.status, 415);
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'content_type_unsupported');
  const bare = await h.fetch('/v1/runs', { method: 'POST' });
  assert.equal(bare.status, 415);
  assert.equal(((await bare.json()) as { error: { code: string } }).error.code, 'content_type_unsupported');
});

test('a body over the limit → 413 body_too_large', async () => {
  const res = await h.fetch('/v1/runs', { json: py({ source: 'x'.repeat(BODY_LIMIT_BYTES * 2) }) });
  assert.equal(res.status, 413);
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'body_too_large');
  assert.match(body.error.message, new RegExp(String(BODY_LIMIT_BYTES)));
});

test('an invalid wait parameter → 400 request_invalid at wait', async () => {
  const res = await h.fetch('/v1/runs?wait=maybe', { json: py({}) });
  assert.equal(res.status, 400);
  const { error } = (await res.json()) as { error: { code: string; field: string; message: string } };
  assert.equal(error.code, 'request_invalid');
  assert.equal(error.field, 'wait');
  assert.match(error.message, /^wait: must be one of .*"true"/);
});

test('unknown routes and methods answer with the same error shape', async () => {
  const missing = await h.fetch('/v2/runs');
  assert.equal(missing.status, 404);
  assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'route_not_found');
  const wrongMethod = await h.fetch('/v1/runs/abc', { method: 'PUT' });
  assert.equal(wrongMethod.status, 405);
  assert.equal(wrongMethod.headers.get('allow'), 'GET, DELETE, HEAD');
  assert.equal(((await wrongMethod.json()) as { error: { code: string } }).error.code, 'method_not_allowed');
});

test('none of the refused requests wrote a record or queued a job', async () => {
  await assertNothingHappened();
});

test('a valid request after all that is accepted', async () => {
  const res = await h.fetch('/v1/runs', { json: withFiles(file('main.c', 'aGk=', 'base64'), file('lib/util.h', '#pragma once')) });
  assert.equal(res.status, 202);
  const body = (await res.json()) as { id: string; status: string };
  assert.equal(body.status, 'queued');
  const job = await h.queue.getJob(body.id);
  assert.deepEqual(job?.data.files, [
    { name: 'main.c', contentBase64: 'aGk=' },
    { name: 'lib/util.h', contentBase64: Buffer.from('#pragma once').toString('base64') },
  ]);
});

test('well-formed non-ASCII text (an NFC name, characters outside the BMP) is accepted and reaches the job unchanged', async () => {
  const source = 'print("caf\u00e9 \u{1F600}")';
  const res = await h.fetch('/v1/runs', {
    json: { language: 'c', files: [file('caf\u00e9/\u{1F600}.c', source)], stdin: '\u{10FFFF}', args: ['\u00e9'] },
  });
  assert.equal(res.status, 202, await res.clone().text());
  const job = await h.queue.getJob(((await res.json()) as { id: string }).id);
  assert.equal(job?.data.files[0]?.name, 'caf\u00e9/\u{1F600}.c');
  assert.equal(Buffer.from(job!.data.files[0]!.contentBase64, 'base64').toString('utf8'), source);
  assert.equal(Buffer.from(job!.data.stdinBase64, 'base64').toString('utf8'), '\u{10FFFF}');
  assert.deepEqual(job?.data.args, ['\u00e9']);
});

test('a JSON body that starts with a byte order mark is read as JSON (RFC 8259 lets a parser ignore the mark), and a mark inside a string is kept', async () => {
  const res = await h.fetch('/v1/runs', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: `\ufeff${JSON.stringify({ language: 'c', files: [file('main.c', '\ufeffint main(){}')] })}`,
  });
  assert.equal(res.status, 202, await res.clone().text());
  const job = await h.queue.getJob(((await res.json()) as { id: string }).id);
  assert.equal(Buffer.from(job!.data.files[0]!.contentBase64, 'base64').toString('utf8'), '\ufeffint main(){}');
});
