import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveLimits } from '../../../../runtime/limits.ts';
import { checkRunBudget, runWorstCase } from '../../../../services/api/runs/budget.ts';
import { parseMemory } from '../../../../services/api/runs/store-room.ts';
import { loadRuntimeConfig, loadServiceConfig } from '../../../../services/shared/config.ts';
import type { RunJobData } from '../../../../services/shared/contract.ts';
import type { LanguageView } from '../../../../services/shared/schemas.ts';

const { defaults, maxima } = loadRuntimeConfig({});
const service = loadServiceConfig({});
const python: LanguageView = {
  name: 'python',
  displayName: 'Python',
  versions: ['3'],
  sourceFile: 'main.py',
  limits: defaults,
  compileLimits: null,
  maxLimits: maxima,
  workers: 1,
};
const c: LanguageView = { ...python, name: 'c', compileLimits: { ...defaults, outputBytes: 65536 } };
const job = (tests: number, limits: RunJobData['limits'] = {}): RunJobData => ({
  id: 'r',
  language: 'python',
  files: [],
  stdinBase64: '',
  args: [],
  limits,
  compare: 'trim',
  client: 'k',
  createdAt: 0,
  tests: Array.from({ length: tests }, (_, i) => ({ name: `t${i}`, stdinBase64: '', expectedOutputBase64: '' })),
});
/** The worst case of a job, with its limits resolved over the language's as the API does. */
const worstOf = (j: RunJobData, language: LanguageView, jobBytes = 0) =>
  runWorstCase(j, language, resolveLimits(j.limits, language.limits, language.maxLimits), { jobBytes });

test("a run's worst case counts the compiler's output and each run step's, and tests × wallMs", () => {
  const worst = worstOf(job(3, { outputBytes: 1000, wallMs: 2000 }), c, 10);
  assert.equal(worst.runSteps, 3);
  assert.equal(worst.outputBytes, 65536 + 3 * 1000);
  assert.equal(worst.wallMs, 6000);
  assert.ok(worst.storeBytes >= 10 + 2 * worst.outputBytes, 'JSON of an output is at most twice its bytes');
  const native = worstOf(job(0), python, 0);
  assert.equal(native.runSteps, 1);
  assert.equal(native.outputBytes, defaults.outputBytes, 'the language default when the request sets none');
});

test('the defaults fit the budget; 100 tests at the default limits do not, and the answer names the maximum and the field', () => {
  assert.doesNotThrow(() => checkRunBudget(job(1), worstOf(job(1), python, 0), service));
  assert.throws(() => checkRunBudget(job(100), worstOf(job(100), python, 0), service), {
    code: 'limit_over_maximum',
    field: 'limits.outputBytes',
    message: /over the server maximum of 16777216 bytes per run/,
  });
  const many = job(100, { outputBytes: 1024 });
  assert.throws(() => checkRunBudget(many, worstOf(many, python, 0), service), {
    code: 'limit_over_maximum',
    field: 'limits.wallMs',
    message: /100 tests could hold a sandbox for 500000 ms of wall time, over the server maximum of 300000 ms/,
  });
  const fits = job(100, { outputBytes: 1024, wallMs: 3000 });
  assert.doesNotThrow(() => checkRunBudget(fits, worstOf(fits, python, 0), service));
});

test('INFO memory is read for used_memory and maxmemory, wherever they are', () => {
  const info = '# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nmaxmemory:8388608\r\nmaxmemory_human:8.00M\r\n';
  assert.deepEqual(parseMemory(info), { usedBytes: 1048576, maxBytes: 8388608 });
  assert.deepEqual(parseMemory('# Memory\r\nused_memory:5\r\n'), { usedBytes: 5, maxBytes: 0 });
});
