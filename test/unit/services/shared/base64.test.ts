import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isCanonicalBase64 } from '../../../../services/shared/base64.ts';
import { BASE64_PATTERN } from '../../../../services/shared/schemas.ts';

/** The document's pattern: the rule the hand-written check must agree with. */
const PATTERN = new RegExp(BASE64_PATTERN);
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

test('what Buffer encodes is canonical, at every length', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const text = Buffer.from(bytes).toString('base64');
      assert.ok(isCanonicalBase64(text), text);
    }),
    { numRuns: 500 },
  );
});

test('agrees with BASE64_PATTERN on near-base64 strings (alphabet, padding, spaces, non-ASCII)', () => {
  const nearBase64 = fc.string({ unit: fc.constantFrom(...ALPHABET, '=', '=', ' ', '\n', '-', '_', '\u00e9', '\ud800'), maxLength: 16 });
  fc.assert(
    fc.property(nearBase64, (text) => {
      assert.equal(isCanonicalBase64(text), PATTERN.test(text), JSON.stringify(text));
    }),
    { numRuns: 5_000 },
  );
});

test('padding bits and padding places', () => {
  for (const good of ['', 'aGk=', 'aA==', 'AAEC/w==', 'QUJD']) assert.ok(isCanonicalBase64(good), good);
  for (const bad of ['aGl=', 'aB==', 'aGk', '=', '====', 'A===', 'aGk=aGk=', 'aG=k', 'aGk==', ' aGk=', 'aGk=\n'])
    assert.ok(!isCanonicalBase64(bad), bad);
});

// On Node 20, PATTERN.test over 8 MiB of base64 throws RangeError (the backtrack stack): the reason for the hand-written check.
test('a body-sized string is checked in one pass', () => {
  const size = 16 << 20;
  const valid = 'QUJD'.repeat(size / 4);
  const almost = `${valid.slice(0, -1)}*`;
  const started = performance.now();
  assert.equal(isCanonicalBase64(valid), true);
  assert.equal(isCanonicalBase64(almost), false);
  assert.ok(performance.now() - started < 1_000, `took ${performance.now() - started} ms`);
});
