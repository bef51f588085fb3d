import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsonPath, parseInput } from '../../../../services/api/middleware/validate.ts';
import { ServiceError } from '../../../../services/shared/errors.ts';
import { runRequestSchema } from '../../../../services/shared/schemas.ts';

const schema = runRequestSchema({ maxFiles: 2, maxTests: 1 });

function refusal(body: unknown): { code: string; field: string | undefined; message: string } {
  try {
    parseInput(schema, body);
  } catch (error) {
    assert.ok(error instanceof ServiceError);
    return { code: error.code, field: error.field, message: error.message };
  }
  assert.fail('accepted');
}

test('JSON paths', () => {
  assert.equal(jsonPath([]), '');
  assert.equal(jsonPath(['files', 2, 'name']), 'files[2].name');
  assert.equal(jsonPath(['limits', 'cpuMs']), 'limits.cpuMs');
  assert.equal(jsonPath([0, 'a']), '[0].a');
});

test('defaults fill what the caller left out', () => {
  const body = parseInput(schema, { language: 'python', source: 'x' });
  assert.deepEqual(body, { language: 'python', source: 'x', stdin: '', args: [], limits: {}, tests: [], compare: 'trim' });
  const withFile = parseInput(schema, { language: 'c', files: [{ name: 'a.c', content: 'x' }] });
  assert.equal(withFile.files?.[0]?.encoding, 'utf8');
});

test('each refusal names its field and says what is expected', () => {
  assert.deepEqual(refusal({ language: 'python' }), {
    code: 'source_missing',
    field: undefined,
    message: 'the body: send either source or files',
  });
  assert.deepEqual(refusal({ language: 'python', source: 1 }), {
    code: 'request_invalid',
    field: 'source',
    message: 'source: must be a string, not a number',
  });
  assert.deepEqual(refusal({ language: 'python', source: '', limits: { cpuMs: 0 } }), {
    code: 'request_invalid',
    field: 'limits.cpuMs',
    message: 'limits.cpuMs: must be greater than 0',
  });
  assert.deepEqual(refusal({ language: 'python', source: '', tests: [{}] }), {
    code: 'request_invalid',
    field: 'tests[0].expectedOutput',
    message: 'tests[0].expectedOutput: is required',
  });
  assert.deepEqual(refusal({ language: 'python', source: '', extra: 1, more: 2 }), {
    code: 'request_invalid',
    field: 'extra',
    message: 'extra: is not a known field',
  });
  assert.equal(
    refusal({
      language: 'c',
      files: [
        { name: 'a', content: 'x' },
        { name: 'b', content: 'x' },
        { name: 'c', content: 'x' },
      ],
    }).code,
    'files_too_many',
  );
  assert.equal(refusal({ language: 'python', source: '', tests: [{ expectedOutput: '' }, { expectedOutput: '' }] }).code, 'tests_too_many');
  assert.deepEqual(refusal({ language: 'c', files: [{ name: 'a/../b', content: 'x' }] }).field, 'files[0].name');
  assert.deepEqual(refusal({ language: 'c', files: [{ name: 'a', content: '@@@@', encoding: 'base64' }] }).code, 'content_invalid_base64');
  assert.match(refusal({ language: 'python', source: '', stdin: null }).message, /^stdin: must be a string, not null$/);
});

test('strict base64: canonical encodings only', () => {
  const ok = (content: string) => parseInput(schema, { language: 'c', files: [{ name: 'f', content, encoding: 'base64' }] });
  for (const bytes of [[], [0], [0, 1], [0, 1, 2], [255, 254, 253, 252], [...Buffer.from('hello world')]]) {
    assert.doesNotThrow(() => ok(Buffer.from(bytes).toString('base64')), JSON.stringify(bytes));
  }
  for (const content of [
    'a',
    'ab',
    'abc',
    'ab=',
    'a===',
    '====',
    'aGk=\n',
    ' aGk=',
    'aG-k',
    'aG_k',
    'aGk=aGk=',
    'aGl=',
    'aGVsbG9=',
    'aGVsbG8h\r\n',
  ]) {
    assert.throws(() => ok(content), { code: 'content_invalid_base64' }, JSON.stringify(content));
  }
});
