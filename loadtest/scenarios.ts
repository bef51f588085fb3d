/**
 * The load test scenarios of loadtest/k6/scenarios.json (the same file the
 * k6 scripts open), and how their load becomes steps of fixed concurrency for
 * autocannon: a shared-iterations load is one step of N requests, a
 * constant-vus load one step of a duration, and a ramping-vus stage a series
 * of short steps at the concurrency k6 would have at that moment (k6 ramps
 * continuously; autocannon holds a number of connections per run).
 */
import { readFileSync } from 'node:fs';

export interface Expectation {
  status: number;
  verdict: string;
  stdout?: string;
}

export interface RunRequest {
  name: string;
  weight: number;
  body: object;
  expect: Expectation;
}

export interface Stage {
  duration: string;
  target: number;
}

export type Load =
  | { executor: 'shared-iterations'; vus: number; iterations: number; maxDuration: string }
  | { executor: 'constant-vus'; vus: number; duration: string }
  | { executor: 'ramping-vus'; stages: Stage[] };

export interface Thresholds {
  httpReqFailedRate: number;
  checksRate: number;
  p95Ms: number;
}

export interface Scenario {
  description: string;
  load: Load;
  requests: RunRequest[];
  thresholds: Thresholds;
}

export const SCENARIOS_PATH = new URL('k6/scenarios.json', import.meta.url).pathname;

export function loadScenarios(path = SCENARIOS_PATH): Record<string, Scenario> {
  const raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  return Object.fromEntries(Object.entries(raw).filter(([name]) => !name.startsWith('$'))) as Record<string, Scenario>;
}

/** One autocannon run: `connections` at once, until `amount` requests are done or `seconds` have passed. */
export interface Step {
  connections: number;
  amount?: number;
  seconds?: number;
}

const MS_PER_UNIT: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
/** A ramp is followed in steps of at most this long. */
const RAMP_STEP_MS = 5_000;

/** k6's durations: "30s", "1m", "1m30s", "500ms". */
export function durationMs(text: string): number {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text)
    throw new Error(`not a duration: ${JSON.stringify(text)} (use 30s, 1m, 1m30s)`);
  return parts.reduce((sum, p) => sum + Number(p[1]) * MS_PER_UNIT[p[2]!]!, 0);
}

export interface LoadOverrides {
  vus?: number;
  iterations?: number;
  duration?: string;
}

/** The steps autocannon runs for a load, with the VUS, ITERATIONS and DURATION overrides the k6 scripts also take. */
export function steps(load: Load, overrides: LoadOverrides = {}): Step[] {
  if (load.executor === 'shared-iterations') {
    return [
      {
        connections: overrides.vus ?? load.vus,
        amount: overrides.iterations ?? load.iterations,
        seconds: durationMs(load.maxDuration) / 1000,
      },
    ];
  }
  if (load.executor === 'constant-vus') {
    return [{ connections: overrides.vus ?? load.vus, seconds: durationMs(overrides.duration ?? load.duration) / 1000 }];
  }
  const result: Step[] = [];
  let from = 0;
  for (const stage of load.stages) {
    const stageMs = durationMs(stage.duration);
    const count = Math.max(1, Math.ceil(stageMs / RAMP_STEP_MS));
    for (let i = 0; i < count; i++) {
      // The concurrency k6 reaches at the end of this slice of the stage.
      const connections = Math.round(from + ((stage.target - from) * (i + 1)) / count);
      if (connections > 0) result.push({ connections, seconds: stageMs / count / 1000 });
    }
    from = stage.target;
  }
  return result;
}

/** A request of the scenario, chosen by weight; `random` in [0, 1). */
export function pick(requests: RunRequest[], random: number): RunRequest {
  const total = requests.reduce((sum, r) => sum + r.weight, 0);
  let at = random * total;
  for (const request of requests) {
    at -= request.weight;
    if (at < 0) return request;
  }
  return requests.at(-1)!;
}

/** Whether an answer passes the request's checks; what is wrong with it otherwise. */
export function judge(request: RunRequest, status: number, body: string): string | null {
  const { expect } = request;
  if (status !== expect.status) return `status ${status}`;
  let answer: { verdict?: string; run?: { stdout?: string } | null };
  try {
    answer = JSON.parse(body) as typeof answer;
  } catch {
    return 'not JSON';
  }
  if (answer.verdict !== expect.verdict) return `verdict ${answer.verdict}`;
  if (expect.stdout !== undefined && answer.run?.stdout !== expect.stdout)
    return `stdout ${JSON.stringify(answer.run?.stdout?.slice(0, 40))}`;
  return null;
}
