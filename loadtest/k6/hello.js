// k6 run -e BRIG_URL=http://127.0.0.1:8080 -e VUS=4 -e ITERATIONS=500 loadtest/k6/hello.js
// The scenario of `npm run bench:e2e`: python hello-world runs through
// POST /v1/runs?wait=true at a fixed concurrency. Set BRIG_API_KEY when the
// service requires a key.
import http from 'k6/http';
import { check } from 'k6';

const url = __ENV.BRIG_URL || 'http://127.0.0.1:8080';
const headers = { 'content-type': 'application/json' };
if (__ENV.BRIG_API_KEY) headers.authorization = `Bearer ${__ENV.BRIG_API_KEY}`;

export const options = {
  scenarios: {
    hello: {
      executor: 'shared-iterations',
      vus: Number(__ENV.VUS || 4),
      iterations: Number(__ENV.ITERATIONS || 500),
      maxDuration: '10m',
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
  },
};

const body = JSON.stringify({ language: 'python', source: 'print("hello world")\n' });

export default function () {
  const response = http.post(`${url}/v1/runs?wait=true`, body, { headers, timeout: '60s' });
  check(response, {
    'status is 200': (r) => r.status === 200,
    'verdict is ok': (r) => r.json('verdict') === 'ok',
    'output is right': (r) => r.json('run.stdout') === 'hello world\n',
  });
}
