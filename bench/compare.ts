/**
 * npm run bench:compare — judge-output comparison on adversarial output, against its floor.
 *
 * Each adversarial shape is 16 MiB and is compared with a copy whose last
 * character differs, so that no mode can answer before the end; as strings and
 * as Buffers, in every mode. One more shape is 4 M numbers against the same
 * numbers written otherwise (1.0 vs 1), where float mode must parse every pair.
 * The floor, measured in the same run, is one memcmp pass: Buffer.equals on two
 * equal 16 MiB buffers. Each cell prints milliseconds and how many floors that is.
 *
 * Then, to show what the scanners replaced, the regex comparer of commit
 * d32758b (`git show d32758b:services/worker/compare.ts`, copied below) on small
 * sizes of its two worst shapes, its growth per doubling of the input, and
 * what that growth extrapolates to at 1 MiB and 16 MiB; and the old comparer on
 * the numbers shape, where it was linear, for a like-for-like figure.
 * Environment: BENCH_RUNS (default 5): each figure is the median of that many runs.
 */
import { performance } from 'node:perf_hooks';
import { RequestError } from '../runtime/errors.ts';
import type { CompareMode } from '../services/shared/contract.ts';
import { compareOutput } from '../services/worker/compare.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const KIB = 1024;
const MIB = 1024 * KIB;
const SIZE = 16 * MIB;
const OLD_SIZES = [8 * KIB, 16 * KIB, 32 * KIB, 64 * KIB];
const EXTRAPOLATED_SIZES = [MIB, 16 * MIB];
const FLOAT_TOLERANCE = 1e-6;
const MODES: { name: string; mode: CompareMode }[] = [
  { name: 'exact', mode: 'exact' },
  { name: 'trim', mode: 'trim' },
  { name: 'tokens', mode: 'tokens' },
  { name: `float ${FLOAT_TOLERANCE}`, mode: { float: FLOAT_TOLERANCE } },
];

/** A flat string, as the worker's TextDecoder makes, not a rope of concatenations. */
const flat = (text: string) => Buffer.from(text, 'latin1').toString('latin1');
const lastChanged = (text: string, last: string) => flat(text.slice(0, -1) + last);

const againstLastChanged = (name: string, text: string, last: string) => ({ name, actual: flat(text), expected: lastChanged(text, last) });
const NUMBERS = { name: '4 M numbers, 1.0 vs 1', actual: flat('1.0 '.repeat(SIZE / 4)), expected: flat('1 '.repeat(SIZE / 4)) };
const SHAPES = [
  againstLastChanged('spaces then x', `${' '.repeat(SIZE - 1)}x`, 'y'),
  againstLastChanged('digits then x', `${'1'.repeat(SIZE - 1)}x`, 'y'),
  againstLastChanged('digits vs other digits', '1'.repeat(SIZE), '2'),
  againstLastChanged('0.111… vs 0.111…2', `0.${'1'.repeat(SIZE - 2)}`, '2'),
  againstLastChanged('8 M CRLF lines', '\r\n'.repeat(SIZE / 2), 'x'),
  againstLastChanged('space/tab alternating', ' \t'.repeat(SIZE / 2), 'x'),
  NUMBERS,
];

function medianMs(fn: () => unknown, runs = RUNS): number {
  fn(); // warm-up: leave the JIT's first tier out of the figure
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    fn();
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
}

/** time = c·size^k by least squares in log-log space: one noisy run moves it less than a single doubling would. */
function powerLawFit(sizes: number[], times: number[]): { exponent: number; predictMs: (size: number) => number } {
  const xs = sizes.map(Math.log);
  const ys = times.map(Math.log);
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const [mx, my] = [mean(xs), mean(ys)];
  const exponent = xs.reduce((sum, x, i) => sum + (x - mx) * (ys[i]! - my), 0) / xs.reduce((sum, x) => sum + (x - mx) ** 2, 0);
  return { exponent, predictMs: (size) => Math.exp(my + exponent * (Math.log(size) - mx)) };
}

function humanDuration(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, 'days'],
    [3_600_000, 'h'],
    [60_000, 'min'],
    [1000, 's'],
  ];
  for (const [size, unit] of units) if (ms >= size) return `${(ms / size).toFixed(1)} ${unit}`;
  return `${ms.toFixed(1)} ms`;
}

// ---- the regex comparer of d32758b, verbatim but for its name ----

function oldCompareOutput(actual: string | Buffer, expected: string | Buffer, mode: CompareMode): boolean {
  const [a, e] = asComparable(actual, expected);
  if (mode === 'exact') return a === e;
  if (mode === 'trim') return sameList(trimmedLines(a), trimmedLines(e));
  if (mode === 'tokens') return sameList(tokens(a), tokens(e));
  if (typeof mode === 'object' && mode !== null && 'float' in mode) {
    const tolerance = mode.float;
    if (!Number.isFinite(tolerance) || tolerance < 0) {
      throw new RequestError('compare_invalid', `compare float tolerance must be a finite number >= 0, got ${tolerance}`, {
        field: 'compare.float',
      });
    }
    const at = tokens(a);
    const et = tokens(e);
    return at.length === et.length && at.every((token, i) => sameNumberOrToken(token, et[i]!, tolerance));
  }
  throw new RequestError(
    'compare_invalid',
    `unknown compare mode ${JSON.stringify(mode)}: use exact, trim, tokens or {"float": tolerance}`,
    { field: 'compare' },
  );
}

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

const DECIMAL_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function parseNumber(token: string): number | null {
  if (!DECIMAL_NUMBER.test(token)) return null;
  const value = Number(token);
  return Number.isFinite(value) ? value : null;
}

const FLOAT_ROUNDING_SLACK = 1e-15;

function sameNumberOrToken(actual: string, expected: string, tolerance: number): boolean {
  if (actual === expected) return true;
  const a = parseNumber(actual);
  const e = parseNumber(expected);
  if (a === null || e === null) return false;
  const difference = Math.abs(a - e);
  return difference <= tolerance + FLOAT_ROUNDING_SLACK || difference <= tolerance * Math.abs(e) + FLOAT_ROUNDING_SLACK;
}

// ---- the benchmark ----

function benchScanners(): void {
  const floorA = Buffer.alloc(SIZE, 'a');
  const floorB = Buffer.from(floorA);
  const floorMs = medianMs(() => floorA.equals(floorB));
  console.log(`compare benchmark: 16 MiB per input, median of ${RUNS} runs after a warm-up, node ${process.version}`);
  console.log(`floor: Buffer.equals on two equal 16 MiB buffers (one memcmp pass): ${floorMs.toFixed(2)} ms`);
  console.log(
    'each shape against a copy whose last character differs (numbers: against 1 1 1 …, which all but float refuse at the first token): ms (× floor)',
  );
  console.log(`${'shape'.padEnd(24)} ${'input'.padEnd(7)}${MODES.map((m) => m.name.padStart(18)).join('')}`);
  for (const shape of SHAPES) {
    const inputs = [
      { name: 'string', actual: shape.actual as string | Buffer, expected: shape.expected as string | Buffer },
      { name: 'Buffer', actual: Buffer.from(shape.actual, 'latin1'), expected: Buffer.from(shape.expected, 'latin1') },
    ];
    for (const input of inputs) {
      const cells = MODES.map(({ mode }) => {
        const ms = medianMs(() => compareOutput(input.actual, input.expected, mode));
        return `${ms.toFixed(1)} (${(ms / floorMs).toFixed(0)}×)`.padStart(18);
      });
      console.log(`${shape.name.padEnd(24)} ${input.name.padEnd(7)}${cells.join('')}`);
    }
  }
}

function benchOldRegex(): void {
  const worst = [
    { name: 'spaces then x', mode: 'trim' as CompareMode, make: (n: number) => `${' '.repeat(n - 1)}x`, expected: 'x' },
    { name: 'digits then x', mode: { float: FLOAT_TOLERANCE } as CompareMode, make: (n: number) => `${'1'.repeat(n - 1)}x`, expected: '1' },
  ];
  console.log('');
  console.log('the old regex comparer (d32758b) on its worst shapes, one run per size (they are slow); the new one beside it');
  console.log(`${'shape / mode'.padEnd(30)} ${'size'.padStart(6)} ${'old ms'.padStart(9)} ${'growth'.padStart(7)} ${'new ms'.padStart(8)}`);
  for (const shape of worst) {
    const label = `${shape.name} / ${typeof shape.mode === 'string' ? shape.mode : 'float'}`;
    const oldTimes: number[] = [];
    for (const size of OLD_SIZES) {
      const actual = flat(shape.make(size));
      const oldMs = medianMs(() => oldCompareOutput(actual, shape.expected, shape.mode), 1);
      const newMs = medianMs(() => compareOutput(actual, shape.expected, shape.mode));
      const growth = oldTimes.length > 0 ? `${(oldMs / oldTimes[oldTimes.length - 1]!).toFixed(2)}×` : '';
      console.log(
        `${label.padEnd(30)} ${`${size / KIB} KB`.padStart(6)} ${oldMs.toFixed(1).padStart(9)} ${growth.padStart(7)} ${newMs.toFixed(3).padStart(8)}`,
      );
      oldTimes.push(oldMs);
    }
    const { exponent, predictMs } = powerLawFit(OLD_SIZES, oldTimes);
    const projections = EXTRAPOLATED_SIZES.map((size) => `${size / MIB} MiB ≈ ${humanDuration(predictMs(size))}`);
    console.log(`${label}: old time grows as size^${exponent.toFixed(2)}; extrapolated: ${projections.join(', ')}`);
  }
  const float: CompareMode = { float: FLOAT_TOLERANCE };
  const [oldMs, newMs] = [oldCompareOutput, compareOutput].map((compare) =>
    medianMs(() => compare(NUMBERS.actual, NUMBERS.expected, float), 1),
  );
  console.log(`${NUMBERS.name} (16 MiB), float, strings, one run: old ${oldMs!.toFixed(0)} ms, new ${newMs!.toFixed(0)} ms`);
}

benchScanners();
benchOldRegex();
