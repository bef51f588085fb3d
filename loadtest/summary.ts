/**
 * The end-of-test summary, in k6's layout (metric name, dots, values), and
 * the scenario's thresholds judged on it, as k6 judges the same thresholds of
 * the k6 scripts: http_req_failed rate, checks rate, http_req_duration p(95).
 */
import type { Tally } from './autocannon-runner.ts';
import type { Thresholds } from './scenarios.ts';

export interface Summary {
  requests: number;
  requestsPerS: number;
  failedRate: number;
  checksRate: number;
  latencyMs: { avg: number; p50: number; p95: number; p99: number; max: number };
  runs: number;
  runsPerS: number;
  verdicts: Record<string, number>;
}

export interface ThresholdResult {
  name: string;
  ok: boolean;
}

const NAME_WIDTH = 32;
const PERCENT = 100;

/** The value at quantile q of sorted values (the nearest rank, as k6 reports). */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function summarize(tally: Tally): Summary {
  const sorted = [...tally.latenciesMs].sort((a, b) => a - b);
  const avg = sorted.length ? sorted.reduce((s, v) => s + v, 0) / sorted.length : 0;
  const checks = tally.checksPassed + tally.checksFailed;
  const runs = [...tally.verdicts.values()].reduce((s, v) => s + v, 0);
  const seconds = tally.durationS || 1;
  return {
    requests: tally.requests,
    requestsPerS: tally.requests / seconds,
    failedRate: tally.requests ? tally.failed / tally.requests : 0,
    checksRate: checks ? tally.checksPassed / checks : 0,
    latencyMs: { avg, p50: quantile(sorted, 0.5), p95: quantile(sorted, 0.95), p99: quantile(sorted, 0.99), max: sorted.at(-1) ?? 0 },
    runs,
    runsPerS: runs / seconds,
    verdicts: Object.fromEntries([...tally.verdicts.entries()].sort()),
  };
}

export function judgeThresholds(summary: Summary, thresholds: Thresholds): ThresholdResult[] {
  return [
    { name: `http_req_failed: rate<${thresholds.httpReqFailedRate}`, ok: summary.failedRate < thresholds.httpReqFailedRate },
    { name: `checks: rate>${thresholds.checksRate}`, ok: summary.checksRate > thresholds.checksRate },
    { name: `http_req_duration: p(95)<${thresholds.p95Ms}`, ok: summary.latencyMs.p95 < thresholds.p95Ms },
  ];
}

const line = (name: string, value: string) => `     ${name}${'.'.repeat(Math.max(2, NAME_WIDTH - name.length))}: ${value}`;
const ms = (v: number) => `${v.toFixed(2)}ms`;
const pct = (v: number) => `${(v * PERCENT).toFixed(2)}%`;

export function formatSummary(summary: Summary, tally: Tally, thresholds: ThresholdResult[]): string {
  const { latencyMs: l } = summary;
  const lines = [
    line('checks', `${pct(summary.checksRate)} ✓ ${tally.checksPassed} ✗ ${tally.checksFailed}`),
    line('http_req_duration', `avg=${ms(l.avg)} p(50)=${ms(l.p50)} p(95)=${ms(l.p95)} p(99)=${ms(l.p99)} max=${ms(l.max)}`),
    line('http_req_failed', `${pct(summary.failedRate)} ✓ ${tally.failed} ✗ ${tally.requests - tally.failed}`),
    line('http_reqs', `${summary.requests} ${summary.requestsPerS.toFixed(2)}/s`),
    line(
      'runs',
      `${summary.runs} ${summary.runsPerS.toFixed(2)}/s (${
        Object.entries(summary.verdicts)
          .map(([v, n]) => `${v} ${n}`)
          .join(', ') || 'none'
      })`,
    ),
  ];
  for (const [name, reasons] of tally.failures) lines.push(line(`failed checks: ${name}`, reasons.join('; ')));
  lines.push('', '     thresholds');
  for (const t of thresholds) lines.push(`     ${t.ok ? '✓' : '✗'} ${t.name}`);
  return lines.join('\n');
}
