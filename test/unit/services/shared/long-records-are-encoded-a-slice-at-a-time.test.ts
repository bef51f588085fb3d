/**
 * A final record with 16 MiB of output is encoded into bytes a slice at a
 * time, the event loop turning in between (jsonOf), and must still be
 * byte for byte what JSON.stringify writes: readers cut records by their
 * head (storedStatus) and splice them into signals unparsed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JSON_SLICE_CHARS, jsonOf } from '../../../../services/shared/record-json.ts';

const noPause = async () => {};
const bytesOf = (encoded: string | Buffer) => (typeof encoded === 'string' ? Buffer.from(encoded) : encoded);

test('a record without long strings is JSON.stringify, as a string, in one go', async () => {
  let pauses = 0;
  const record = { id: 'r1', language: 'python', status: 'done', run: { stdout: 'hello "world"\n', stderr: '' }, tests: [] };
  const encoded = await jsonOf(record, async () => {
    pauses++;
  });
  assert.equal(encoded, JSON.stringify(record));
  assert.equal(pauses, 0);
});

test('long strings anywhere in a record come out byte for byte as JSON.stringify writes them', async () => {
  const S = JSON_SLICE_CHARS;
  const cases: Record<string, string> = {
    'a surrogate pair across the slice boundary': `${'a'.repeat(S - 1)}😀${'b'.repeat(10)}`,
    'a lone high surrogate at the boundary': `${'a'.repeat(S - 1)}\ud800b`,
    'a lone low surrogate after it': `${'a'.repeat(S)}\udc00`,
    'escapes throughout': '"\\\n\t\x00\x1f\u2028é'.repeat(Math.ceil((2 * S) / 12)),
    'exactly one slice': 'x'.repeat(S),
    'multi-byte text over three slices': 'ünïcödé 漢字 '.repeat(Math.ceil((3 * S) / 12)),
  };
  for (const [name, text] of Object.entries(cases)) {
    const record = {
      id: 'r1',
      language: 'python',
      status: 'done',
      verdict: 'ok',
      run: { stdout: text, stderr: 'short', exitCode: 0 },
      tests: [{ name: 't', stdout: text.slice(1), stderr: text }],
      note: null,
    };
    const encoded = await jsonOf(record, noPause);
    assert.ok(Buffer.isBuffer(encoded), `${name}: bytes`);
    assert.ok(bytesOf(encoded).equals(Buffer.from(JSON.stringify(record))), name);
  }
});

test('short strings that look like the stand-in for a long one change nothing', async () => {
  const record = {
    id: 'r1',
    language: 'python',
    status: 'done',
    // The stand-in is a NUL and 32 hex digits, random per record: these cannot be it, and must stay as they are.
    run: { stdout: 'y'.repeat(JSON_SLICE_CHARS), stderr: `\u0000${'0'.repeat(32)}` },
    tests: [{ stdout: '"\\u0000', stderr: '\u0000' }],
  };
  assert.ok(bytesOf(await jsonOf(record, noPause)).equals(Buffer.from(JSON.stringify(record))));
});

test('the event loop turns before each slice of a long string is escaped, and as its bytes are written', async () => {
  let pauses = 0;
  const record = { id: 'r1', run: { stdout: 'z'.repeat(4 * JSON_SLICE_CHARS), stderr: 'w'.repeat(JSON_SLICE_CHARS + 1) } };
  const encoded = await jsonOf(record, async () => {
    pauses++;
  });
  assert.ok(bytesOf(encoded).equals(Buffer.from(JSON.stringify(record))));
  // Six slices escaped, each after a pause; then 2.5 MiB written, with a pause after each 512 KiB or so.
  assert.ok(pauses >= 6 + 4, `${pauses} pauses`);
});
