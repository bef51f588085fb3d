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
 *
 * The output is written by an untrusted program and may be 16 MiB of one
 * adversarial shape, and this runs on the worker's event loop. So every mode
 * is a hand-written scanner that walks both sides at once, looks at each code
 * unit a bounded number of times, and allocates nothing per line or token but
 * the string that Number() parses when two tokens differ as text: no regex (a
 * backtracking `[ \t…]+$` is quadratic on a long whitespace run), no arrays
 * of lines or tokens.
 */
export function compareOutput(actual: string | Buffer, expected: string | Buffer, mode: CompareMode): boolean {
  const tolerance = floatTolerance(mode);
  const [a, e] = asUnits(actual, expected);
  // A right answer is most often the expected output to the byte, which matches
  // in every mode: one native comparison (memcmp) settles the common case.
  if (a.equals(e)) return true;
  if (mode === 'exact') return false;
  if (mode === 'trim') return sameTrimmedLines(a, e);
  return sameTokens(a, e, tolerance);
}

/** The tolerance of a float mode, null for the other modes; refuses a mode it does not know before any output is read. */
function floatTolerance(mode: CompareMode): number | null {
  if (mode === 'exact' || mode === 'trim' || mode === 'tokens') return null;
  if (typeof mode === 'object' && mode !== null && 'float' in mode) {
    const tolerance = mode.float;
    if (!Number.isFinite(tolerance) || tolerance < 0) {
      throw new RequestError('compare_invalid', `compare float tolerance must be a finite number >= 0, got ${tolerance}`, {
        field: 'compare.float',
      });
    }
    return tolerance;
  }
  throw new RequestError(
    'compare_invalid',
    `unknown compare mode ${JSON.stringify(mode)}: use exact, trim, tokens or {"float": tolerance}`,
    { field: 'compare' },
  );
}

/**
 * Output seen as a sequence of code units: the UTF-16 units of a string, or
 * the bytes of a Buffer. ASCII whitespace, digits, signs and '.' have the same
 * code in both, so one scanner serves both without decoding anything.
 */
interface Units {
  readonly length: number;
  at(index: number): number;
  /** Byte for byte (unit for unit) the same, natively. */
  equals(other: Units): boolean;
  /** The units start..end as a string, for Number(); only called on a token already checked to be a decimal number. */
  text(start: number, end: number): string;
}

class StringUnits implements Units {
  readonly length: number;
  constructor(private readonly value: string) {
    this.length = value.length;
  }
  at(index: number): number {
    return this.value.charCodeAt(index);
  }
  equals(other: Units): boolean {
    return other instanceof StringUnits && other.value === this.value;
  }
  text(start: number, end: number): string {
    return this.value.slice(start, end);
  }
}

class ByteUnits implements Units {
  readonly length: number;
  constructor(private readonly bytes: Buffer) {
    this.length = bytes.length;
  }
  at(index: number): number {
    return this.bytes[index]!;
  }
  equals(other: Units): boolean {
    return other instanceof ByteUnits && other.bytes.equals(this.bytes);
  }
  text(start: number, end: number): string {
    // Only ever a token already checked to be ASCII digits, signs, '.' and 'e'.
    return this.bytes.toString('latin1', start, end);
  }
}

/**
 * Bytes when either side is a Buffer. The string side of a mixed pair is
 * encoded once as UTF-8 (as large as the string it comes from); bytes are
 * never copied into a string.
 */
function asUnits(actual: string | Buffer, expected: string | Buffer): [Units, Units] {
  if (typeof actual === 'string' && typeof expected === 'string') return [new StringUnits(actual), new StringUnits(expected)];
  return [new ByteUnits(asBytes(actual)), new ByteUnits(asBytes(expected))];
}

function asBytes(value: string | Buffer): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
}

const TAB = 0x09; // \t; \n, \v, \f, \r follow it: 0x0a–0x0d
const CARRIAGE_RETURN = 0x0d;
const LINE_FEED = 0x0a;
const SPACE = 0x20;
const PLUS = 0x2b;
const MINUS = 0x2d;
const DOT = 0x2e;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const LOWER_E = 0x65;
const UPPER_E = 0x45;

function isWhitespace(code: number): boolean {
  return code === SPACE || (code >= TAB && code <= CARRIAGE_RETURN);
}

function isDigit(code: number): boolean {
  return code >= DIGIT_0 && code <= DIGIT_9;
}

/** Whether units from..end-of-line (or end of input) are all whitespace; returns the line's end, or -1 if not. */
function blankLineRest(u: Units, from: number): number {
  let i = from;
  for (; i < u.length; i++) {
    const code = u.at(i);
    if (code === LINE_FEED) return i;
    if (!isWhitespace(code)) return -1;
  }
  return i;
}

function allWhitespace(u: Units, from: number): boolean {
  for (let i = from; i < u.length; i++) if (!isWhitespace(u.at(i))) return false;
  return true;
}

/**
 * Lines compared pairwise in one pass. Two lines are equal without trailing
 * whitespace exactly when, after their longest common prefix, what is left of
 * each line is whitespace; so no line is scanned backwards or twice. When one
 * side runs out of lines, the other may only have blank lines left, which is
 * to say only whitespace (LF included).
 */
function sameTrimmedLines(a: Units, e: Units): boolean {
  let i = 0;
  let j = 0;
  for (;;) {
    // The common prefix may run on through equal lines and their LFs.
    while (i < a.length && j < e.length && a.at(i) === e.at(j)) {
      i++;
      j++;
    }
    i = blankLineRest(a, i);
    j = blankLineRest(e, j);
    if (i < 0 || j < 0) return false;
    // Each side now stands on its line's LF, or at its end.
    if (i === a.length) return allWhitespace(e, j);
    if (j === e.length) return allWhitespace(a, i);
    i++;
    j++;
  }
}

function skipWhitespace(u: Units, from: number): number {
  let i = from;
  while (i < u.length && isWhitespace(u.at(i))) i++;
  return i;
}

function tokenEnd(u: Units, from: number): number {
  let i = from;
  while (i < u.length && !isWhitespace(u.at(i))) i++;
  return i;
}

/**
 * Tokens compared pairwise in one pass, unit by unit. With a tolerance, a pair
 * that differs as text gets a second look as numbers: each token is then read
 * to its end, checked and parsed once, so the pass stays linear.
 */
function sameTokens(a: Units, e: Units, tolerance: number | null): boolean {
  let i = 0;
  let j = 0;
  for (;;) {
    i = skipWhitespace(a, i);
    j = skipWhitespace(e, j);
    if (i === a.length || j === e.length) return i === a.length && j === e.length;
    const actualStart = i;
    const expectedStart = j;
    while (i < a.length && j < e.length) {
      const code = a.at(i);
      if (code !== e.at(j) || isWhitespace(code)) break;
      i++;
      j++;
    }
    const actualEnded = i === a.length || isWhitespace(a.at(i));
    const expectedEnded = j === e.length || isWhitespace(e.at(j));
    if (actualEnded && expectedEnded) continue;
    if (tolerance === null) return false;
    i = tokenEnd(a, i);
    j = tokenEnd(e, j);
    if (!sameNumber(a, actualStart, i, e, expectedStart, j, tolerance)) return false;
  }
}

/**
 * Slack on top of the tolerance, as testlib's doubleCompare has, so that a
 * difference exactly at the tolerance (1.1 vs 1.0 at 0.1) is not refused for
 * the rounding error of binary floating point.
 */
export const FLOAT_ROUNDING_SLACK = 1e-15;

function sameNumber(a: Units, aStart: number, aEnd: number, e: Units, eStart: number, eEnd: number, tolerance: number): boolean {
  const actual = parseDecimal(a, aStart, aEnd);
  if (actual === null) return false;
  const expected = parseDecimal(e, eStart, eEnd);
  if (expected === null) return false;
  const difference = Math.abs(actual - expected);
  return difference <= tolerance + FLOAT_ROUNDING_SLACK || difference <= tolerance * Math.abs(expected) + FLOAT_ROUNDING_SLACK;
}

/** A plain finite decimal number, or null: no hex, no inf, no nan, nothing that overflows a double. */
function parseDecimal(u: Units, start: number, end: number): number | null {
  if (!isDecimal(u, start, end)) return null;
  const value = Number(u.text(start, end));
  return Number.isFinite(value) ? value : null;
}

/**
 * [+-]? (D+ .? D* | . D+) ([eE] [+-]? D+)? over the whole of start..end, D a
 * digit: the grammar Number() accepts minus its hex, binary, octal, Infinity
 * and surrounding-whitespace forms.
 */
function isDecimal(u: Units, start: number, end: number): boolean {
  let i = skipSign(u, start, end);
  let next = skipDigits(u, i, end);
  let mantissaDigits = next - i;
  i = next;
  if (i < end && u.at(i) === DOT) {
    next = skipDigits(u, i + 1, end);
    mantissaDigits += next - (i + 1);
    i = next;
  }
  if (mantissaDigits === 0) return false;
  if (i < end && (u.at(i) === LOWER_E || u.at(i) === UPPER_E)) {
    const exponentStart = skipSign(u, i + 1, end);
    i = skipDigits(u, exponentStart, end);
    if (i === exponentStart) return false;
  }
  return i === end;
}

// Top-level helpers, not closures: this runs once per number token, and a closure
// per call costs an allocation (and, under tsx's keepNames, a defineProperty).
function skipSign(u: Units, from: number, end: number): number {
  return from < end && (u.at(from) === PLUS || u.at(from) === MINUS) ? from + 1 : from;
}

function skipDigits(u: Units, from: number, end: number): number {
  let i = from;
  while (i < end && isDigit(u.at(i))) i++;
  return i;
}
