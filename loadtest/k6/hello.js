// @ts-check
// k6 run -e BRIG_URL=http://127.0.0.1:8080 -e BRIG_API_KEY=KEY loadtest/k6/hello.js
// python hello-world runs through POST /v1/runs?wait=true at a fixed
// concurrency: the scenario of `npm run bench:e2e`.
// The scenario lives in scenarios.json; `npm run loadtest -- --scenario hello` runs it with autocannon.
import { iterate, optionsFor } from './lib.js';

export const options = optionsFor('hello');

export default function () {
  iterate('hello');
}
