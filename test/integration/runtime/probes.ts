/**
 * Running the adversarial programs of test/probes/ and reading what they
 * report. A probe prints one "what: result" line per attempt; the tests
 * decide which results are acceptable.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Limits } from '../../../runtime/limits.ts';
import type { StepResult } from '../../../runtime/result.ts';
import { Submission } from '../../../runtime/submission.ts';
import type { TestRuntime } from '../../helpers/runtime.ts';

export const PROBES_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'probes');
/** How much of a program's output an assertion message quotes. */
const EXPLAIN_OUTPUT_CHARS = 3000;

export function probeSource(file: string): string {
  return readFileSync(join(PROBES_DIR, file), 'utf8');
}

/**
 * A C probe compiled once in its own job. The job keeps its slot until
 * close(), and every run() is a fresh sandbox over the compiled workspace,
 * so one compile serves many runs with different limits and inputs.
 */
export class CompiledProbe {
  private constructor(readonly job: Submission) {}

  static async compile(rt: TestRuntime, file: string): Promise<CompiledProbe> {
    const job = await Submission.open(rt.runtime, { language: 'c', files: [{ name: 'main.c', content: Buffer.from(probeSource(file)) }] });
    try {
      const compile = await job.compile();
      assert.equal(compile?.verdict, 'ok', `probe ${file} does not compile:\n${explain(compile)}`);
      return new CompiledProbe(job);
    } catch (error) {
      job.close();
      throw error;
    }
  }

  run(stdin: string, limits: Partial<Limits> = {}): Promise<StepResult> {
    return this.job.run(Buffer.from(stdin), { limits: { ...this.job.runLimits, ...limits } });
  }

  close(): void {
    this.job.close();
  }
}

/** A step result for an assertion message: the facts first, then what the program printed. */
export function explain(result: StepResult | null | undefined): string {
  if (!result) return `no result: ${String(result)}`;
  const { stdout, stderr, ...facts } = result;
  const cut = (text: string) =>
    text.length > EXPLAIN_OUTPUT_CHARS ? `${text.slice(0, EXPLAIN_OUTPUT_CHARS)}… (${text.length} chars)` : text;
  return `${JSON.stringify(facts)}\n--- stdout ---\n${cut(stdout)}\n--- stderr ---\n${cut(stderr)}`;
}

/** "what: result" lines → what → result (the first result, for repeated lines). */
export function parseReport(stdout: string): Map<string, string> {
  const report = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const at = line.indexOf(': ');
    if (at <= 0) continue;
    const what = line.slice(0, at);
    if (!report.has(what)) report.set(what, line.slice(at + 2));
  }
  return report;
}

/** Every line of the report whose attempt starts with `prefix`, e.g. all the uid_map lines. */
export function reportValues(stdout: string, prefix: string): string[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith(`${prefix}: `))
    .map((line) => line.slice(prefix.length + 2));
}
