import type { StepSummary, StepView, TestSummary, TestView } from '../shared/contract.ts';

/**
 * A step without its output, for progress events and the running record:
 * outputs are stored once, in the final record, whatever the number of
 * followers or updates.
 */
export function summarizeStep(step: StepView): StepSummary {
  const { stdout: _stdout, stderr: _stderr, stdoutEncoding: _stdoutEncoding, stderrEncoding: _stderrEncoding, ...summary } = step;
  return summary;
}

export function summarizeTest(test: TestView): TestSummary {
  const { stdout: _stdout, stderr: _stderr, stdoutEncoding: _stdoutEncoding, stderrEncoding: _stderrEncoding, ...summary } = test;
  return summary;
}
