// @ts-check
// What the k6 scripts of this folder share: the scenarios of scenarios.json
// (the same file `npm run loadtest` runs with autocannon) turned into k6
// options, and one iteration: a weighted choice of the scenario's requests,
// POST /v1/runs?wait=true, and a check of status, verdict and stdout.
// Environment: BRIG_URL (default http://127.0.0.1:8080), BRIG_API_KEY (the
// first of a comma-separated list is used), VUS, ITERATIONS, DURATION.

import { check } from 'k6';
import http from 'k6/http';

/**
 * @typedef {{ status: number, verdict: string, stdout?: string }} Expectation
 * @typedef {{ name: string, weight: number, body: object, expect: Expectation }} RunRequest
 * @typedef {{ duration: string, target: number }} Stage
 * @typedef {{ executor: 'shared-iterations', vus: number, iterations: number, maxDuration: string }
 *         | { executor: 'constant-vus', vus: number, duration: string }
 *         | { executor: 'ramping-vus', stages: Stage[] }} Load
 * @typedef {{ httpReqFailedRate: number, checksRate: number, p95Ms: number }} Thresholds
 * @typedef {{ description: string, load: Load, requests: RunRequest[], thresholds: Thresholds }} Scenario
 */

/** @type {Record<string, Scenario>} */
const SCENARIOS = JSON.parse(open('./scenarios.json'));
const URL_BASE = __ENV.BRIG_URL || 'http://127.0.0.1:8080';
const API_KEY = (__ENV.BRIG_API_KEY || '').split(',')[0];
/** wait=true answers within BRIG_WAIT_TIMEOUT_MS (30 s by default); a little more. */
const REQUEST_TIMEOUT = '60s';

/**
 * @param {string} name
 * @returns {Scenario}
 */
export function scenario(name) {
  const found = SCENARIOS[name];
  if (!found) throw new Error(`no scenario ${name} in scenarios.json`);
  return found;
}

/**
 * k6 options for a scenario, VUS, ITERATIONS and DURATION overriding its load.
 * @param {string} name
 * @returns {import('k6/options').Options}
 */
export function optionsFor(name) {
  const { load, thresholds } = scenario(name);
  /** @type {import('k6/options').Scenario} */
  let executor;
  if (load.executor === 'shared-iterations') {
    executor = {
      executor: 'shared-iterations',
      vus: Number(__ENV.VUS || load.vus),
      iterations: Number(__ENV.ITERATIONS || load.iterations),
      maxDuration: load.maxDuration,
    };
  } else if (load.executor === 'constant-vus') {
    executor = { executor: 'constant-vus', vus: Number(__ENV.VUS || load.vus), duration: __ENV.DURATION || load.duration };
  } else {
    executor = { executor: 'ramping-vus', startVUs: 0, stages: load.stages };
  }
  return {
    scenarios: { [name]: executor },
    thresholds: {
      http_req_failed: [`rate<${thresholds.httpReqFailedRate}`],
      checks: [`rate>${thresholds.checksRate}`],
      http_req_duration: [`p(95)<${thresholds.p95Ms}`],
    },
  };
}

/**
 * A request of the scenario, chosen by weight.
 * @param {RunRequest[]} requests
 * @returns {RunRequest}
 */
function pick(requests) {
  const total = requests.reduce((sum, r) => sum + r.weight, 0);
  let at = Math.random() * total;
  for (const request of requests) {
    at -= request.weight;
    if (at < 0) return request;
  }
  return requests[requests.length - 1];
}

/**
 * One iteration of the scenario.
 * @param {string} name
 */
export function iterate(name) {
  const request = pick(scenario(name).requests);
  /** @type {Record<string, string>} */
  const headers = { 'content-type': 'application/json' };
  if (API_KEY) headers.authorization = `Bearer ${API_KEY}`;
  const response = http.post(`${URL_BASE}/v1/runs?wait=true`, JSON.stringify(request.body), {
    headers,
    timeout: REQUEST_TIMEOUT,
    tags: { run: request.name },
  });
  const { expect } = request;
  check(response, {
    [`${request.name}: status ${expect.status}`]: (r) => r.status === expect.status,
    [`${request.name}: verdict ${expect.verdict}`]: (r) => r.status === expect.status && r.json('verdict') === expect.verdict,
    ...(expect.stdout === undefined
      ? {}
      : { [`${request.name}: stdout`]: (r) => r.status === expect.status && r.json('run.stdout') === expect.stdout }),
  });
}
