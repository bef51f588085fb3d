// @ts-check
// k6 run -e BRIG_URL=http://127.0.0.1:8080 -e BRIG_API_KEY=KEY loadtest/k6/mix.js
// a mix of languages and verdicts (hellos, a wrong answer, compile and
// runtime errors, a memory bomb, an endless loop), each checked.
// The scenario lives in scenarios.json; `npm run loadtest -- --scenario mix` runs it with autocannon.
import { iterate, optionsFor } from './lib.js';

export const options = optionsFor('mix');

export default function () {
  iterate('mix');
}
