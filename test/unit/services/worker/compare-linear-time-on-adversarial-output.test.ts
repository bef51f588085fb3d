import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import type { CompareMode } from '../../../../services/shared/contract.ts';
import { compareOutput } from '../../../../services/worker/compare.ts';

/*
 * 16 MiB of each output shape that made the old regex comparer quadratic (a
 * long whitespace run before a non-space, a long digit run before a non-digit)
 * or made it build arrays as long as the output (8 M lines), in every mode, as
 * strings and as bytes. The old code took 2.5 s on 60 KB of spaces; a linear
 * scanner takes tens of milliseconds per 16 MiB. The time bound only catches a
 * hang; it is not a benchmark (npm run bench:compare is).
 */

const SIZE = 16 * 1024 * 1024;
/** A safety net against a hang, generous for a loaded 2-core machine: the comparisons take a few seconds in all. */
const WHOLE_TEST_BOUND_MS = 10_000;
const FLOAT_TOLERANCE = 1e-6;

/** The text with its last character replaced, so that no mode can answer before the very end. */
const lastChanged = (text: string, last: string) => text.slice(0, -1) + last;

interface Case {
  shape: string;
  actual: string;
  expected: string;
  /** exact, trim, tokens, float */
  want: [boolean, boolean, boolean, boolean];
}

const spaces = `${' '.repeat(SIZE - 1)}x`;
const digits = `${'1'.repeat(SIZE - 1)}x`;
const hugeInteger = '1'.repeat(SIZE);
const longFraction = `0.${'1'.repeat(SIZE - 2)}`;
const crlfLines = '\r\n'.repeat(SIZE / 2);
const spaceTab = ' \t'.repeat(SIZE / 2);

const CASES: Case[] = [
  {
    shape: 'one line of spaces then x, against spaces then y',
    actual: spaces,
    expected: lastChanged(spaces, 'y'),
    want: [false, false, false, false],
  },
  { shape: 'one line of spaces then x, against x', actual: spaces, expected: 'x', want: [false, false, true, true] },
  {
    shape: 'one token of digits then x, against digits then y',
    actual: digits,
    expected: lastChanged(digits, 'y'),
    want: [false, false, false, false],
  },
  { shape: 'one token of digits then x, against 1', actual: digits, expected: '1', want: [false, false, false, false] },
  {
    shape: 'a digits token that overflows a double, against another',
    actual: hugeInteger,
    expected: lastChanged(hugeInteger, '2'),
    want: [false, false, false, false],
  },
  {
    shape: 'a 16 MiB fraction, against one that differs in its last digit',
    actual: longFraction,
    expected: lastChanged(longFraction, '2'),
    want: [false, false, false, true],
  },
  {
    shape: '8 M CRLF line ends, against a last line of x',
    actual: crlfLines,
    expected: lastChanged(crlfLines, 'x'),
    want: [false, false, false, false],
  },
  { shape: '8 M CRLF line ends, against nothing', actual: crlfLines, expected: '', want: [false, true, true, true] },
  {
    shape: 'alternating space and tab, against a last x',
    actual: spaceTab,
    expected: lastChanged(spaceTab, 'x'),
    want: [false, false, false, false],
  },
  { shape: 'alternating space and tab, against nothing', actual: spaceTab, expected: '', want: [false, true, true, true] },
];

const MODES: CompareMode[] = ['exact', 'trim', 'tokens', { float: FLOAT_TOLERANCE }];

test('compare: 16 MiB adversarial outputs in every mode, as text and as bytes, finish in linear time', (t) => {
  const runs = CASES.flatMap((c) => [
    { ...c, representation: 'string', actual: c.actual as string | Buffer, expected: c.expected as string | Buffer },
    { ...c, representation: 'Buffer', actual: Buffer.from(c.actual, 'latin1'), expected: Buffer.from(c.expected, 'latin1') },
  ]);
  let comparingMs = 0;
  let slowest = { ms: 0, what: '' };
  for (const run of runs) {
    MODES.forEach((mode, m) => {
      const what = `${run.shape}, ${run.representation}, ${JSON.stringify(mode)}`;
      const start = performance.now();
      const same = compareOutput(run.actual, run.expected, mode);
      const ms = performance.now() - start;
      assert.equal(same, run.want[m], what);
      comparingMs += ms;
      if (ms > slowest.ms) slowest = { ms, what };
    });
  }
  t.diagnostic(
    `${runs.length * MODES.length} comparisons: ${comparingMs.toFixed(0)} ms in all; slowest ${slowest.ms.toFixed(0)} ms (${slowest.what})`,
  );
  assert.ok(comparingMs < WHOLE_TEST_BOUND_MS, `the comparisons took ${comparingMs.toFixed(0)} ms: something is no longer linear`);
});

test('compare: a 16 MiB output against 16 MiB bytes of a different kind compares the text as UTF-8 bytes', () => {
  // The mixed path encodes the string side once; it must stay linear too.
  const start = performance.now();
  assert.equal(compareOutput(spaceTab, Buffer.from(`${spaceTab}\n`), 'trim'), true);
  assert.equal(compareOutput(Buffer.from(spaces), lastChanged(spaces, 'y'), 'tokens'), false);
  assert.ok(performance.now() - start < WHOLE_TEST_BOUND_MS);
});

test('compare: 4 M numbers against the same numbers written otherwise, float mode parses each pair once', () => {
  // Every token differs as text (1.0 vs 1), so every pair takes the number path: linear, no per-token closures.
  const actual = '1.0 '.repeat(SIZE / 4);
  const expected = '1 '.repeat(SIZE / 4);
  const asBytes = [Buffer.from(actual), Buffer.from(expected)] as const;
  const start = performance.now();
  assert.equal(compareOutput(actual, expected, { float: FLOAT_TOLERANCE }), true);
  assert.equal(compareOutput(asBytes[0], asBytes[1], { float: FLOAT_TOLERANCE }), true);
  const lastWrong = `${'1 '.repeat(SIZE / 4 - 1)}2 `;
  assert.equal(compareOutput(actual, lastWrong, { float: FLOAT_TOLERANCE }), false, 'only the last of 4 M numbers differs');
  assert.ok(performance.now() - start < WHOLE_TEST_BOUND_MS);
});
