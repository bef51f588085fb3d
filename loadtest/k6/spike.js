// @ts-check
// k6 run -e BRIG_URL=http://127.0.0.1:8080 -e BRIG_API_KEY=KEY loadtest/k6/spike.js
// a spike: from 2 to 32 virtual users in 5 seconds, held for 20, and back.
// The scenario lives in scenarios.json; `npm run loadtest -- --scenario spike` runs it with autocannon.
import { iterate, optionsFor } from './lib.js';

export const options = optionsFor('spike');

export default function () {
  iterate('spike');
}
