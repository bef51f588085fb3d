/**
 * What one guest left in its results share: the steps it ran (guest/lib.sh
 * appends "<placement> <step> <exit code>" to `steps`), each step's counts
 * (count-reporter.mjs), and `finished` once the last placement is done.
 * Whatever is missing or inconsistent becomes a failure of its own, so a
 * guest that crashed, hung or skipped a placement never reads as a pass.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** In the order guest/run.sh runs them. */
export const PLACEMENTS = ['root-unprepared', 'root', 'delegated', 'namespace'] as const;

export interface Failure {
  name: string;
  file?: string;
  message: string;
}

export interface Tally {
  passed: number;
  failed: number;
  skipped: number;
  todo: number;
  failures: Failure[];
}

export interface GuestReport {
  byPlacement: Map<string, Tally>;
  total: Tally;
  finished: boolean;
  /** Steps that failed once and were run again (guest/lib.sh step): "placement step exit-code". */
  retried: string[];
}

const emptyTally = (): Tally => ({ passed: 0, failed: 0, skipped: 0, todo: 0, failures: [] });

function add(into: Tally, from: Tally): void {
  into.passed += from.passed;
  into.failed += from.failed;
  into.skipped += from.skipped;
  into.todo += from.todo;
  into.failures.push(...from.failures);
}

function fail(tally: Tally, name: string, message: string): void {
  tally.failed++;
  tally.failures.push({ name, message });
}

function readStep(path: string): Tally | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Tally;
    return typeof parsed.passed === 'number' && typeof parsed.failed === 'number' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export function readGuestReport(shareDir: string): GuestReport {
  const byPlacement = new Map<string, Tally>(PLACEMENTS.map((placement) => [placement, emptyTally()]));
  const stepsPath = join(shareDir, 'steps');
  const lines = existsSync(stepsPath) ? readFileSync(stepsPath, 'utf8').split('\n').filter(Boolean) : [];
  for (const line of lines) {
    const [placement = '?', step = '?', code = '?'] = line.split(' ');
    const tally = byPlacement.get(placement) ?? emptyTally();
    byPlacement.set(placement, tally);
    const counts = readStep(join(shareDir, 'results', `${placement}-${step}.json`));
    if (!counts) {
      fail(
        tally,
        `${placement}: ${step}`,
        `the step left no results (node exited ${code}; 137 means SIGKILL, as at the file's timeout): see the console above`,
      );
      continue;
    }
    add(tally, counts);
    if (code !== '0' && counts.failed === 0) {
      fail(tally, `${placement}: ${step}`, `node exited ${code} with no failing test: the file failed outside its tests`);
    }
    if (counts.passed + counts.failed === 0) fail(tally, `${placement}: ${step}`, 'the step ran no test');
  }
  const finished = existsSync(join(shareDir, 'finished'));
  for (const [placement, tally] of byPlacement) {
    if (tally.passed + tally.failed + tally.skipped === 0)
      fail(tally, placement, 'this placement ran no step: the guest stopped before it');
  }
  const total = emptyTally();
  for (const tally of byPlacement.values()) add(total, tally);
  if (!finished) fail(total, 'guest', 'the guest did not finish its run (crashed, hung or timed out): see the console above');
  const retriedPath = join(shareDir, 'retried');
  const retried = existsSync(retriedPath) ? readFileSync(retriedPath, 'utf8').split('\n').filter(Boolean) : [];
  return { byPlacement, total, finished, retried };
}
