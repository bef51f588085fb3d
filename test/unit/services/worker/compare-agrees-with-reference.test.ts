import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { CompareMode } from '../../../../services/shared/contract.ts';
import { compareOutput, FLOAT_ROUNDING_SLACK } from '../../../../services/worker/compare.ts';

/*
 * The scanners in compare.ts against a reference that states the documented
 * semantics as plainly as possible: split into lines or tokens, compare lists.
 * It uses regexes and arrays freely; it only ever sees small inputs.
 */

const ASCII_WHITESPACE = new Set([' ', '\t', '\n', '\v', '\f', '\r']);
const DECIMAL_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function reference(actual: string | Buffer, expected: string | Buffer, mode: CompareMode): boolean {
  // When either side is bytes, both are bytes: one latin1 char per byte.
  const bytes = typeof actual !== 'string' || typeof expected !== 'string';
  const asText = (v: string | Buffer) => (bytes ? Buffer.from(v as never).toString('latin1') : (v as string));
  const a = asText(actual);
  const e = asText(expected);
  if (mode === 'exact') return a === e;
  if (mode === 'trim') return sameList(lines(a), lines(e));
  if (mode === 'tokens') return sameList(tokens(a), tokens(e));
  const at = tokens(a);
  const et = tokens(e);
  return at.length === et.length && at.every((token, i) => sameNumberOrText(token, et[i]!, mode.float));
}

function trimEnd(line: string): string {
  let end = line.length;
  while (end > 0 && ASCII_WHITESPACE.has(line[end - 1]!)) end--;
  return line.slice(0, end);
}

function lines(text: string): string[] {
  const all = text.split('\n').map(trimEnd);
  while (all.length > 0 && all[all.length - 1] === '') all.pop();
  return all;
}

function tokens(text: string): string[] {
  return text.split(/[ \t\n\v\f\r]/).filter((token) => token !== '');
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}

function sameNumberOrText(actual: string, expected: string, tolerance: number): boolean {
  if (actual === expected) return true;
  if (!DECIMAL_NUMBER.test(actual) || !DECIMAL_NUMBER.test(expected)) return false;
  const a = Number(actual);
  const e = Number(expected);
  if (!Number.isFinite(a) || !Number.isFinite(e)) return false;
  const difference = Math.abs(a - e);
  return difference <= tolerance + FLOAT_ROUNDING_SLACK || difference <= tolerance * Math.abs(e) + FLOAT_ROUNDING_SLACK;
}

/*
 * Inputs: a text is a list of fragments; a fragment is a string, or a raw byte
 * that is not valid UTF-8 on its own (kept only when the text becomes a Buffer).
 */
type Fragment = string | { byte: number };
type Text = Fragment[];

function asString(text: Text): string {
  return text.filter((f): f is string => typeof f === 'string').join('');
}

function asBuffer(text: Text): Buffer {
  return Buffer.concat(text.map((f) => (typeof f === 'string' ? Buffer.from(f, 'utf8') : Buffer.from([f.byte]))));
}

const WHITESPACE_UNIT = fc.constantFrom(' ', '\t', '\n', '\r\n', '\r', '\v', '\f');
const WHITESPACE_RUN = fc.oneof(
  fc.array(WHITESPACE_UNIT, { minLength: 1, maxLength: 4 }).map((units) => units.join('')),
  fc.tuple(fc.constantFrom(' ', '\t', '\n', ' \t', '\r\n'), fc.integer({ min: 8, max: 40 })).map(([unit, n]) => unit.repeat(n)),
);
const SEPARATOR = fc.oneof({ arbitrary: WHITESPACE_RUN, weight: 4 }, { arbitrary: fc.constant(''), weight: 1 });

// é and U+00A0 (not whitespace) as UTF-8; lone bytes: 0xff/0xfe never valid, 0x80 a stray continuation,
// 0xc3 a truncated lead, 0xa0 latin1's NBSP, 0x85 latin1's NEL: none of them is ASCII whitespace.
const TOKEN_CHAR: fc.Arbitrary<Fragment> = fc.oneof(
  { arbitrary: fc.constantFrom('0', '1', '5', '9', '.', 'e', 'E', '+', '-', 'a', 'x', 'é', '\u00a0'), weight: 6 },
  { arbitrary: fc.constantFrom(0xff, 0xfe, 0x80, 0xc3, 0xa0, 0x85).map((byte) => ({ byte })), weight: 1 },
);

const NUMBER_LIKE = fc.oneof(
  fc
    .tuple(fc.double(), fc.constantFrom('string', 'exponential', 'fixed'), fc.integer({ min: 0, max: 8 }))
    .map(([value, format, digits]) => {
      if (!Number.isFinite(value) || format === 'string') return String(value);
      return format === 'exponential' ? value.toExponential(digits) : Math.abs(value) < 1e21 ? value.toFixed(digits) : String(value);
    }),
  fc.double({ min: -1e6, max: 1e6, noNaN: true }).map(String),
  fc.constantFrom(
    '+.5',
    '5.',
    '-0',
    '.',
    '+',
    '-',
    '1e',
    '.e1',
    'e5',
    '1e+',
    '1E+2',
    '-1e-3',
    '00012',
    '1.2.3',
    '--1',
    '+-1',
    'nan',
    'inf',
    '1e999',
    '-1e999',
    '0x10',
    '1_000',
  ),
);

const TOKEN: fc.Arbitrary<Text> = fc.oneof(
  NUMBER_LIKE.map((token) => [token]),
  fc.array(TOKEN_CHAR, { minLength: 1, maxLength: 6 }),
);

const PIECE = fc.record({ separator: SEPARATOR, token: TOKEN });
const TEXT: fc.Arbitrary<Text> = fc
  .tuple(fc.array(PIECE, { maxLength: 8 }), SEPARATOR)
  .map(([pieces, tail]) => [...pieces.flatMap((p) => [p.separator, ...p.token]), tail]);

/** A number nudged by an amount near the tolerances under test, absolute or relative. */
const NUDGE = fc.tuple(fc.constantFrom(0, 1e-7, 1e-6, 2e-6, 1e-3, 0.1, 0.5, 1, 2), fc.boolean(), fc.boolean());

function nudged(token: Text, [amount, negative, relative]: [number, boolean, boolean]): Text {
  const text = token.length === 1 && typeof token[0] === 'string' ? token[0] : null;
  const value = text === null ? Number.NaN : Number(text);
  if (!Number.isFinite(value)) return token;
  const delta = (negative ? -amount : amount) * (relative ? Math.abs(value) : 1);
  return [String(value + delta)];
}

/**
 * The same text, retouched the ways that must (or must not) still match:
 * CRLF for LF, trailing whitespace before line ends, other whitespace, numbers
 * nudged, tokens replaced, and blank lines or spaces added at the end.
 */
const RELATED_PAIR: fc.Arbitrary<[Text, Text]> = fc
  .tuple(
    fc.array(
      fc.record({
        separator: SEPARATOR,
        otherSeparator: SEPARATOR,
        separatorEdit: fc.constantFrom('same', 'same', 'same', 'crlf', 'trailing', 'other'),
        token: TOKEN,
        otherToken: TOKEN,
        tokenEdit: fc.constantFrom('same', 'same', 'same', 'nudge', 'nudge', 'other'),
        nudge: NUDGE,
      }),
      { maxLength: 8 },
    ),
    fc.constantFrom('', '\n', '\r\n', '\n\n', ' \n\t\n', '  ', '\n \n x'),
  )
  .map(([pieces, suffix]) => {
    const original: Text = [];
    const retouched: Text = [];
    for (const p of pieces) {
      original.push(p.separator, ...p.token);
      const separator = {
        same: p.separator,
        crlf: p.separator.replaceAll('\n', '\r\n'),
        trailing: p.separator.replaceAll('\n', ' \t\f\n'),
        other: p.otherSeparator,
      }[p.separatorEdit]!;
      const token = { same: p.token, nudge: nudged(p.token, p.nudge), other: p.otherToken }[p.tokenEdit]!;
      retouched.push(separator, ...token);
    }
    retouched.push(suffix);
    return [original, retouched];
  });

const PAIR: fc.Arbitrary<[Text, Text]> = fc.oneof(
  { arbitrary: RELATED_PAIR, weight: 4 },
  { arbitrary: fc.tuple(TEXT, TEXT), weight: 1 },
  { arbitrary: TEXT.map((t): [Text, Text] => [t, t]), weight: 1 },
);

const MODES: CompareMode[] = ['exact', 'trim', 'tokens', { float: 0 }, { float: 1e-6 }, { float: 0.1 }, { float: 1 }];
const RUNS_PER_MODE = 400;
/** Below this share of either outcome the generators would be testing little; a guard against a vacuous property. */
const MIN_OUTCOME_SHARE = 0.05;

const REPRESENTATIONS = [
  { name: 'string against string', actual: asString, expected: asString },
  { name: 'Buffer against Buffer', actual: asBuffer, expected: asBuffer },
  { name: 'Buffer against string', actual: asBuffer, expected: asString },
  { name: 'string against Buffer', actual: asString, expected: asBuffer },
];

for (const representation of REPRESENTATIONS) {
  test(`property: every mode agrees with the split-based reference, ${representation.name}`, () => {
    for (const mode of MODES) {
      let matches = 0;
      fc.assert(
        fc.property(PAIR, fc.boolean(), ([first, second], swap) => {
          const actual = representation.actual(swap ? second : first);
          const expected = representation.expected(swap ? first : second);
          const want = reference(actual, expected, mode);
          if (want) matches++;
          assert.equal(compareOutput(actual, expected, mode), want);
        }),
        { numRuns: RUNS_PER_MODE },
      );
      const share = matches / RUNS_PER_MODE;
      assert.ok(
        share >= MIN_OUTCOME_SHARE && share <= 1 - MIN_OUTCOME_SHARE,
        `${JSON.stringify(mode)}: ${matches} of ${RUNS_PER_MODE} pairs matched`,
      );
    }
  });
}

test('the reference itself agrees with the documented examples', () => {
  // A reference that were wrong in the same way as the scanners would prove nothing.
  assert.equal(reference('1 2\r\n3\n\n \n', '1 2\n3', 'trim'), true);
  assert.equal(reference('1\n\n2', '1\n2', 'trim'), false);
  assert.equal(reference(' 1', '1', 'trim'), false);
  assert.equal(reference('a\u00a0', 'a', 'trim'), false);
  assert.equal(reference('1\u00a02', '1 2', 'tokens'), false);
  assert.equal(reference('1.1', '1.0', { float: 0.1 }), true);
  assert.equal(reference('1e999', '2e999', { float: 1e9 }), false);
  assert.equal(reference(Buffer.from([0xe9]), 'é', 'exact'), false);
});
