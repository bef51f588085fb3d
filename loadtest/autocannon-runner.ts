/**
 * Runs a scenario's steps with autocannon against POST /v1/runs?wait=true:
 * each request picks one of the scenario's runs by weight, and each answer is
 * checked as the k6 scripts check it. Collects what the summary needs: every
 * latency, the status and check of every answer, errors and timeouts.
 */
import autocannon from 'autocannon';
import { judge, pick, type RunRequest, type Scenario, type Step } from './scenarios.ts';

/** wait=true answers within BRIG_WAIT_TIMEOUT_MS (30 s by default); a little more, as in the k6 scripts. */
const REQUEST_TIMEOUT_S = 60;
const HTTP_ERROR_STATUS = 400;

export interface Tally {
  /** Every answer's latency, ms. */
  latenciesMs: number[];
  requests: number;
  /** k6's http_req_failed: status ≥ 400, or no answer (errors, timeouts). */
  failed: number;
  checksPassed: number;
  checksFailed: number;
  /** Answers that carried a final record (status 200), by verdict. */
  verdicts: Map<string, number>;
  /** The first few reasons checks failed, by request name. */
  failures: Map<string, string[]>;
  durationS: number;
}

const FAILURE_EXAMPLES = 3;

export function emptyTally(): Tally {
  return {
    latenciesMs: [],
    requests: 0,
    failed: 0,
    checksPassed: 0,
    checksFailed: 0,
    verdicts: new Map(),
    failures: new Map(),
    durationS: 0,
  };
}

interface Context {
  request?: RunRequest;
}

/** Runs one step; adds what it saw to the tally. */
export async function runStep(url: string, apiKey: string | undefined, scenario: Scenario, step: Step, tally: Tally): Promise<void> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  const result = await autocannon({
    url,
    connections: step.connections,
    ...(step.amount !== undefined ? { amount: step.amount } : {}),
    ...(step.seconds !== undefined && step.amount === undefined ? { duration: step.seconds } : {}),
    ...(step.seconds !== undefined && step.amount !== undefined ? { maxOverallRequests: step.amount } : {}),
    timeout: REQUEST_TIMEOUT_S,
    requests: [
      {
        method: 'POST',
        path: '/v1/runs?wait=true',
        headers,
        setupRequest: (request, context) => {
          const chosen = pick(scenario.requests, Math.random());
          (context as Context).request = chosen;
          return { ...request, body: JSON.stringify(chosen.body) };
        },
        onResponse: (status, body, context) => {
          const request = (context as Context).request!;
          tally.requests++;
          if (status >= HTTP_ERROR_STATUS) tally.failed++;
          const wrong = judge(request, status, body);
          if (wrong === null) tally.checksPassed++;
          else {
            tally.checksFailed++;
            const examples = tally.failures.get(request.name) ?? [];
            if (examples.length < FAILURE_EXAMPLES) tally.failures.set(request.name, [...examples, wrong]);
          }
          if (status === 200) {
            try {
              const verdict = (JSON.parse(body) as { verdict?: string }).verdict ?? 'none';
              tally.verdicts.set(verdict, (tally.verdicts.get(verdict) ?? 0) + 1);
            } catch {
              // counted as a failed check above
            }
          }
        },
      },
    ],
    setupClient: (client) => {
      client.on('response', (_status: number, _bytes: number, responseTimeMs: number) => tally.latenciesMs.push(responseTimeMs));
    },
  });
  // Requests that got no answer at all: k6 counts them as failed requests.
  tally.failed += result.errors + result.timeouts;
  tally.requests += result.errors + result.timeouts;
  tally.durationS += result.duration;
}
