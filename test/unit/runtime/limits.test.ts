import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RequestError } from '../../../runtime/errors.ts';
import { type Limits, resolveLimits } from '../../../runtime/limits.ts';
import { classify } from '../../../runtime/result.ts';

const defaults: Limits = {
  cpuMs: 1000,
  wallMs: 2000,
  memoryMb: 128,
  processes: 8,
  outputBytes: 1024,
  fileSizeMb: 1,
  openFiles: 32,
  stackMb: 8,
  diskMb: 16,
};
const maxima: Limits = {
  cpuMs: 5000,
  wallMs: 10000,
  memoryMb: 512,
  processes: 64,
  outputBytes: 4096,
  fileSizeMb: 8,
  openFiles: 64,
  stackMb: 64,
  diskMb: 64,
};

test('limits resolve request over language over server default: one function, a layer over a base', () => {
  const language = resolveLimits({ cpuMs: 2000, memoryMb: 256 }, defaults, maxima);
  const limits = resolveLimits({ cpuMs: 3000 }, language, maxima);
  assert.equal(limits.cpuMs, 3000);
  assert.equal(limits.memoryMb, 256);
  assert.equal(limits.wallMs, 2000);
});

test('a limit over the server maximum is refused with the field and the maximum, never clamped', () => {
  assert.throws(
    () => resolveLimits({ memoryMb: 1024 }, defaults, maxima),
    (e: unknown) => {
      assert.ok(e instanceof RequestError);
      assert.equal(e.code, 'limit_over_maximum');
      assert.equal(e.field, 'limits.memoryMb');
      assert.match(e.message, /512/);
      return true;
    },
  );
});

test('a zero, negative or non-finite limit is refused', () => {
  for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => resolveLimits({ cpuMs: bad }, defaults, maxima), { code: 'limit_invalid' });
  }
});

const facts = {
  exitCode: 0,
  signal: null,
  cpuMs: 10,
  wallMs: 10,
  oomKills: 0,
  killedFor: null,
  cpuLimitMs: 1000,
  wallLimitMs: 2000,
} as const;

test('verdicts come from kernel facts, in order: output, memory, time, exit status', () => {
  assert.equal(classify(facts), 'ok');
  assert.equal(classify({ ...facts, exitCode: 1 }), 'runtime_error');
  assert.equal(classify({ ...facts, exitCode: null, signal: 11 }), 'runtime_error');
  assert.equal(classify({ ...facts, cpuMs: 1000 }), 'time_limit');
  assert.equal(classify({ ...facts, wallMs: 2000 }), 'time_limit');
  assert.equal(classify({ ...facts, exitCode: null, signal: 9, killedFor: 'time_limit' }), 'time_limit');
  assert.equal(classify({ ...facts, exitCode: null, signal: 9, oomKills: 1 }), 'memory_limit');
  assert.equal(classify({ ...facts, exitCode: null, signal: 9, oomKills: 1, killedFor: 'output_limit' }), 'output_limit');
});

test('output that is not valid UTF-8 is carried as base64 and marked, never mangled', async () => {
  const { encodeOutput } = await import('../../../runtime/result.ts');
  assert.deepEqual(await encodeOutput('stdout', [Buffer.from('héllo\n')]), { stdout: 'héllo\n' });
  const bytes = Buffer.from([0x66, 0xff, 0xfe, 0x00, 0x0a]);
  const encoded = await encodeOutput('stderr', [bytes]);
  assert.equal(encoded.stderrEncoding, 'base64');
  assert.deepEqual(Buffer.from(encoded.stderr!, 'base64'), bytes);
});

test('the JSON escape count agrees with JSON.stringify for any text, wherever it starts in memory and whatever its length', async () => {
  const { jsonEscapeExtraBytes } = await import('../../../runtime/result.ts');
  // Control characters, quotes and backslashes among other text, so that words with and without them both occur.
  const char = fc.oneof(
    fc.constantFrom('"', '\\', '\n', '\t', '\x00', '\x1f', ' ', '\x7f', 'é', '\u2028', '😀'),
    fc.string({ maxLength: 1, unit: 'grapheme' }),
  );
  fc.assert(
    fc.property(fc.array(char, { maxLength: 64 }), fc.nat(7), (chars, offset) => {
      const text = chars.join('');
      const encoded = Buffer.from(text);
      // At every alignment of the underlying memory: the count goes four bytes at a time where it is aligned.
      const bytes = Buffer.alloc(offset + encoded.length).subarray(offset);
      encoded.copy(bytes);
      assert.equal(bytes.length + jsonEscapeExtraBytes(bytes), Buffer.byteLength(JSON.stringify(text)) - 2, JSON.stringify(text));
    }),
    { numRuns: 2000 },
  );
});

test('an output whose JSON escapes would more than double it goes as base64, so a record holds at most twice the output', async () => {
  const { encodeOutput, jsonEscapeExtraBytes } = await import('../../../runtime/result.ts');
  for (const text of ['plain', 'a\tb\n"q"\\\r\n', '1\n2\n3\n', '\n', 'é\u2028']) {
    const bytes = Buffer.from(text);
    assert.equal(
      Buffer.byteLength(JSON.stringify(text)) - 2,
      bytes.length + jsonEscapeExtraBytes(bytes),
      `escape count of ${JSON.stringify(text)}`,
    );
  }
  assert.deepEqual(await encodeOutput('stdout', [Buffer.from('1\n2\n3\n')]), { stdout: '1\n2\n3\n' });
  const controls = Buffer.from('\x01\x02\x1b[0mx');
  const encoded = await encodeOutput('stdout', [controls]);
  assert.equal(encoded.stdoutEncoding, 'base64');
  assert.deepEqual(Buffer.from(encoded.stdout!, 'base64'), controls);
  for (const sample of [Buffer.alloc(4096, 1), Buffer.alloc(4096, 0x22), Buffer.from('\x1b'.repeat(100) + 'x'.repeat(500))]) {
    const { stdout } = await encodeOutput('stdout', [sample]);
    assert.ok(Buffer.byteLength(JSON.stringify(stdout)) <= 2 * sample.length + 2, 'at most twice the bytes, and the quotes');
  }
});
