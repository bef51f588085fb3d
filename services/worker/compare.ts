import { RequestError } from '../../runtime/errors.ts';
import type { CompareMode } from '../shared/contract.ts';

/**
 * How a judge-mode test's output is checked against the expected output.
 *
 *  - `exact`: byte for byte.
 *  - `trim` (the default): each line without its trailing whitespace (which
 *    includes the CR of a CRLF), and without trailing blank lines. Leading
 *    whitespace and blank lines inside the output still count.
 *  - `tokens`: the whitespace-separated tokens, in order; how many spaces or
 *    newlines lie between them does not matter.
 *  - `{ float: tol }`: tokens, where two tokens that are both decimal numbers
 *    also match when |actual − expected| ≤ tol (absolute) or
 *    |actual − expected| ≤ tol·|expected| (relative to the expected value).
 *    Anything that is not a plain finite decimal number (nan, inf, 0x10, 1e,
 *    a number too large for a double) must match as text.
 *
 * Whitespace is ASCII whitespace only (space, \t, \n, \v, \f, \r), as in the
 * classic judges' checkers: a non-breaking space is part of a token.
 *
 * Output that is not UTF-8 (base64 in a StepResult) comes in as a Buffer; when
 * either side is a Buffer, both are compared as bytes.
 */
export function compareOutput(actual: string | Buffer, expected: string | Buffer, mode: CompareMode): boolean {
  const [a, e] = asComparable(actual, expected);
  if (mode === 'exact') return a === e;
  if (mode === 'trim') return sameList(trimmedLines(a), trimmedLines(e));
  if (mode === 'tokens') return sameList(tokens(a), tokens(e));
  if (typeof mode === 'object' && mode !== null && 'float' in mode) {
    const tolerance = mode.float;
    if (!Number.isFinite(tolerance) || tolerance < 0) {
      throw new RequestError('compare_invalid', `compare float tolerance must be a finite number >= 0, got ${tolerance}`, { field: 'compare.float' });
    }
    const at = tokens(a);
    const et = tokens(e);
    return at.length === et.length && at.every((token, i) => sameNumberOrToken(token, et[i]!, tolerance));
  }
  throw new RequestError('compare_invalid', `unknown compare mode ${JSON.stringify(mode)}: use exact, trim, tokens or {"float": tolerance}`, { field: 'compare' });
}

/**
 * Two strings whose equality is the equality of what they stand for. A Buffer
 * becomes latin1 (one char per byte), so the string algorithms below compare
 * bytes; ASCII whitespace and digits are the same in both encodings.
 */
function asComparable(actual: string | Buffer, expected: string | Buffer): [string, string] {
  if (typeof actual === 'string' && typeof expected === 'string') return [actual, expected];
  const bytes = (v: string | Buffer) => (typeof v === 'string' ? Buffer.from(v, 'utf8') : v).toString('latin1');
  return [bytes(actual), bytes(expected)];
}

const TRAILING_WHITESPACE = /[ \t\n\v\f\r]+$/;
const WHITESPACE_RUN = /[ \t\n\v\f\r]+/;

function trimmedLines(text: string): string[] {
  const lines = text.split('\n').map((line) => line.replace(TRAILING_WHITESPACE, ''));
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function tokens(text: string): string[] {
  return text.split(WHITESPACE_RUN).filter((t) => t !== '');
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}

/** A plain decimal number: sign, digits with an optional fraction, optional exponent. No hex, no inf, no nan. */
const DECIMAL_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function parseNumber(token: string): number | null {
  if (!DECIMAL_NUMBER.test(token)) return null;
  const value = Number(token);
  return Number.isFinite(value) ? value : null;
}

/**
 * Slack on top of the tolerance, as testlib's doubleCompare has, so that a
 * difference exactly at the tolerance (1.1 vs 1.0 at 0.1) is not refused for
 * the rounding error of binary floating point.
 */
const FLOAT_ROUNDING_SLACK = 1e-15;

function sameNumberOrToken(actual: string, expected: string, tolerance: number): boolean {
  if (actual === expected) return true;
  const a = parseNumber(actual);
  const e = parseNumber(expected);
  if (a === null || e === null) return false;
  const difference = Math.abs(a - e);
  return difference <= tolerance + FLOAT_ROUNDING_SLACK || difference <= tolerance * Math.abs(e) + FLOAT_ROUNDING_SLACK;
}
