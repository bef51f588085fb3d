import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestError } from '../../../../runtime/errors.ts';
import { compareOutput } from '../../../../services/worker/compare.ts';

test('exact: byte for byte, whitespace and CR included', () => {
  assert.equal(compareOutput('1 2\n', '1 2\n', 'exact'), true);
  assert.equal(compareOutput('1 2\n', '1 2', 'exact'), false);
  assert.equal(compareOutput('1 2\r\n', '1 2\n', 'exact'), false);
  assert.equal(compareOutput('1  2\n', '1 2\n', 'exact'), false);
  assert.equal(compareOutput('', '', 'exact'), true);
});

test('trim: trailing whitespace per line, trailing blank lines and CR before LF are ignored', () => {
  assert.equal(compareOutput('1 2   \n3\t\n', '1 2\n3\n', 'trim'), true);
  assert.equal(compareOutput('1 2\r\n3\r\n', '1 2\n3\n', 'trim'), true);
  assert.equal(compareOutput('1 2\n3', '1 2\n3\n', 'trim'), true);
  assert.equal(compareOutput('1 2\n3\n\n\n  \n', '1 2\n3', 'trim'), true);
  assert.equal(compareOutput('', '\n\n', 'trim'), true);
});

test('trim: leading whitespace, inner spacing and inner blank lines still count', () => {
  assert.equal(compareOutput(' 1 2\n', '1 2\n', 'trim'), false);
  assert.equal(compareOutput('1  2\n', '1 2\n', 'trim'), false);
  assert.equal(compareOutput('1\n\n2\n', '1\n2\n', 'trim'), false);
  assert.equal(compareOutput('1\n2\n', '1\n3\n', 'trim'), false);
  assert.equal(compareOutput('1\n', '1\n2\n', 'trim'), false);
});

test('tokens: only the whitespace-separated tokens and their order count', () => {
  assert.equal(compareOutput('1   2\n\n3\r\n', '1 2 3', 'tokens'), true);
  assert.equal(compareOutput('\t1\n2 3   ', '1\n2\n3\n', 'tokens'), true);
  assert.equal(compareOutput('1 2 3', '1 3 2', 'tokens'), false);
  assert.equal(compareOutput('1 2', '1 2 3', 'tokens'), false);
  assert.equal(compareOutput('12', '1 2', 'tokens'), false);
  assert.equal(compareOutput('', ' \n ', 'tokens'), true);
});

test('whitespace is ASCII only: a non-breaking space is part of a token', () => {
  assert.equal(compareOutput('1\u00a02', '1 2', 'tokens'), false);
  assert.equal(compareOutput('a\u00a0', 'a', 'trim'), false);
});

test('float: numbers within the absolute tolerance match', () => {
  assert.equal(compareOutput('0.333333', '0.333333333', { float: 1e-6 }), true);
  assert.equal(compareOutput('0.3333', '0.333333333', { float: 1e-6 }), false);
  assert.equal(
    compareOutput('1.1', '1.0', { float: 0.1 }),
    true,
    'a difference exactly at the tolerance is accepted despite binary rounding',
  );
  assert.equal(compareOutput('1.2', '1.0', { float: 0.1 }), false);
  assert.equal(compareOutput('-0.0000001', '0', { float: 1e-6 }), true);
});

test('float: large numbers match within the tolerance relative to the expected value', () => {
  assert.equal(compareOutput('1000000.5', '1000000', { float: 1e-6 }), true);
  assert.equal(compareOutput('1000002', '1000000', { float: 1e-6 }), false);
  assert.equal(compareOutput('1.0000001e20', '1e20', { float: 1e-6 }), true);
});

test('float: number formats, and tokens that are not numbers', () => {
  assert.equal(compareOutput('1e-3 +2 .5 5.', '0.001 2 0.5 5', { float: 1e-9 }), true);
  assert.equal(compareOutput('YES 3.0000001', 'YES 3', { float: 1e-6 }), true);
  assert.equal(compareOutput('NO 3', 'YES 3', { float: 1e-6 }), false);
  assert.equal(compareOutput('1 2', '1 2 3', { float: 1 }), false);
  assert.equal(compareOutput('1  2\n', '1 2', { float: 0 }), true);
  assert.equal(compareOutput('2', '1', { float: 0 }), false);
});

test('float: invalid numbers never match a number, only the same text', () => {
  for (const bad of ['nan', 'NaN', 'inf', '-inf', 'Infinity', '0x10', '1e', '1.2.3', '--1', '1,5', '']) {
    if (bad) assert.equal(compareOutput(bad, '1', { float: 1e9 }), false, `${bad} matched a number`);
  }
  assert.equal(compareOutput('16', '0x10', { float: 1 }), false);
  assert.equal(compareOutput('nan', 'nan', { float: 1e-6 }), true, 'identical text still matches');
  assert.equal(compareOutput('1e999', '1e999', { float: 1e-6 }), true);
  assert.equal(compareOutput('1e999', '2e999', { float: 1e9 }), false, 'an overflowed double is not a number to compare');
});

test('float: a negative or non-finite tolerance is refused', () => {
  for (const float of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(
      () => compareOutput('1', '1', { float }),
      (e: unknown) => e instanceof RequestError && e.code === 'compare_invalid',
    );
  }
  assert.throws(() => compareOutput('1', '1', 'lines' as never), RequestError);
});

test('bytes: output that is not UTF-8 compares as bytes in every mode', () => {
  const bytes = Buffer.from([0xff, 0xfe, 0x20, 0x41, 0x0d, 0x0a]);
  assert.equal(compareOutput(bytes, Buffer.from(bytes), 'exact'), true);
  assert.equal(compareOutput(bytes, Buffer.from([0xff, 0xfe, 0x20, 0x41, 0x0a]), 'exact'), false);
  assert.equal(compareOutput(bytes, Buffer.from([0xff, 0xfe, 0x20, 0x41]), 'trim'), true);
  assert.equal(compareOutput(bytes, Buffer.from([0xff, 0xfe, 0x0a, 0x41]), 'tokens'), true);
  assert.equal(compareOutput(bytes, Buffer.from([0xff, 0xfd, 0x20, 0x41]), 'tokens'), false);
  // Invalid UTF-8 is not silently turned into U+FFFD on both sides and called equal.
  assert.equal(compareOutput(Buffer.from([0xff]), Buffer.from([0xfe]), 'exact'), false);
});

test('bytes against text: the text is compared as its UTF-8 bytes', () => {
  assert.equal(compareOutput(Buffer.from('héllo\n'), 'héllo', 'trim'), true);
  assert.equal(compareOutput('héllo\n', Buffer.from('héllo\n'), 'exact'), true);
  assert.equal(compareOutput(Buffer.from([0xe9]), 'é', 'exact'), false, 'latin1 é is not UTF-8 é');
  assert.equal(
    compareOutput(
      Buffer.concat([Buffer.from('3.0000001 '), Buffer.from([0xff])]),
      Buffer.concat([Buffer.from('3 '), Buffer.from([0xff])]),
      { float: 1e-6 },
    ),
    true,
  );
});
