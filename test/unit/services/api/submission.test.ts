import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findLanguage, toJobData } from '../../../../services/api/runs/submission.ts';
import { loadRuntimeConfig } from '../../../../services/shared/config.ts';
import { type LanguageView, runRequestSchema } from '../../../../services/shared/schemas.ts';

const config = loadRuntimeConfig({});
const python: LanguageView = {
  name: 'python',
  displayName: 'Python 3',
  versions: ['3.12'],
  sourceFile: 'main.py',
  limits: config.defaults,
  compileLimits: null,
  maxLimits: config.maxima,
  workers: 1,
};
const unnamed: LanguageView = { ...python, name: 'exotic', sourceFile: null };
const schema = runRequestSchema({ maxFiles: 10, maxTests: 10 });
const ctx = { id: 'run1', client: 'key:abc', createdAt: 42, requestId: 'req1' };

test("source becomes one file with the language's default name; bytes travel as base64", () => {
  const request = schema.parse({
    language: 'python',
    source: 'print("é")',
    stdin: 'in',
    args: ['a'],
    limits: { cpuMs: 100 },
    tests: [{ expectedOutput: 'x' }],
    callbackUrl: 'https://h/x',
  });
  assert.deepEqual(toJobData(request, python, ctx), {
    id: 'run1',
    language: 'python',
    createdAt: 42,
    requestId: 'req1',
    files: [{ name: 'main.py', contentBase64: Buffer.from('print("é")').toString('base64') }],
    stdinBase64: Buffer.from('in').toString('base64'),
    args: ['a'],
    limits: { cpuMs: 100 },
    tests: [{ name: 'test 1', stdinBase64: '', expectedOutputBase64: Buffer.from('x').toString('base64') }],
    compare: 'trim',
    client: 'key:abc',
    callbackUrl: 'https://h/x',
  });
});

test('base64 files pass through untouched', () => {
  const request = schema.parse({
    language: 'python',
    files: [
      { name: 'a.bin', content: '/w==', encoding: 'base64' },
      { name: 'b.py', content: 'x' },
    ],
  });
  assert.deepEqual(toJobData(request, python, ctx).files, [
    { name: 'a.bin', contentBase64: '/w==' },
    { name: 'b.py', contentBase64: 'eA==' },
  ]);
});

test("refusals: duplicate names, source without a default name (limits are checked against the language's maxima by the route)", () => {
  assert.throws(
    () =>
      toJobData(
        schema.parse({
          language: 'python',
          files: [
            { name: 'a', content: '' },
            { name: 'a', content: '' },
          ],
        }),
        python,
        ctx,
      ),
    { code: 'file_name_duplicate', field: 'files[1].name' },
  );
  assert.throws(() => toJobData(schema.parse({ language: 'exotic', source: '' }), unnamed, ctx), {
    code: 'source_unsupported',
    field: 'source',
  });
});

test('a language nobody runs: unknown when workers are live, unavailable when none is', () => {
  assert.equal(findLanguage(new Map([['python', python]]), 'python'), python);
  assert.throws(() => findLanguage(new Map([['python', python]]), 'cobol'), {
    code: 'language_unknown',
    field: 'language',
    message: 'language "cobol" is not available; available: python',
  });
  assert.throws(
    () => findLanguage(new Map(), 'python'),
    (e: unknown) =>
      (e as { code: string; retryAfterSeconds: number }).code === 'workers_unavailable' &&
      (e as { retryAfterSeconds: number }).retryAfterSeconds > 0,
  );
});
