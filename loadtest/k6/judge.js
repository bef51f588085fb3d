// @ts-check
// k6 run -e BRIG_URL=http://127.0.0.1:8080 -e BRIG_API_KEY=KEY loadtest/k6/judge.js
// judge mode: a C submission compiled once and run against 10 tests, with a
// ramp of virtual users; each iteration waits for the verdict.
// The scenario lives in scenarios.json; `npm run loadtest -- --scenario judge` runs it with autocannon.
import { iterate, optionsFor } from './lib.js';

export const options = optionsFor('judge');

export default function () {
  iterate('judge');
}
