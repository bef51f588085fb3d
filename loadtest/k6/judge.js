// k6 run -e BRIG_URL=http://127.0.0.1:8080 loadtest/k6/judge.js
// Judge-mode load: a C submission compiled once and run against 5 tests, with
// a ramp of virtual users; each iteration waits for the verdict.
import http from 'k6/http';
import { check } from 'k6';

const url = __ENV.BRIG_URL || 'http://127.0.0.1:8080';
const headers = { 'content-type': 'application/json' };
if (__ENV.BRIG_API_KEY) headers.authorization = `Bearer ${__ENV.BRIG_API_KEY}`;

export const options = {
  stages: [
    { duration: '30s', target: Number(__ENV.VUS || 4) },
    { duration: '1m', target: Number(__ENV.VUS || 4) },
    { duration: '15s', target: 0 },
  ],
  thresholds: { http_req_failed: ['rate<0.01'], checks: ['rate>0.99'] },
};

const source = '#include <stdio.h>\nint main(){long a,b; scanf("%ld %ld",&a,&b); printf("%ld\\n",a+b);}\n';
const tests = [1, 2, 3, 4, 5].map((i) => ({ name: `t${i}`, stdin: `${i} ${i * 10}`, expectedOutput: String(i * 11) }));
const body = JSON.stringify({ language: 'c', source, tests });

export default function () {
  const response = http.post(`${url}/v1/runs?wait=true`, body, { headers, timeout: '120s' });
  check(response, {
    'status is 200': (r) => r.status === 200,
    'verdict is ok': (r) => r.json('verdict') === 'ok',
  });
}
