/**
 * The load test scenarios (loadtest/k6/scenarios.json) that both the k6
 * scripts and `npm run loadtest` run: each has its k6 script, names
 * languages Brig has, and asks for verdicts Brig gives; and the autocannon
 * runner's reading of a k6 load (steps, weights, checks).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { durationMs, judge, loadScenarios, pick, type RunRequest, steps } from '../../../loadtest/scenarios.ts';

const K6 = new URL('../../../loadtest/k6/', import.meta.url).pathname;
const LANGUAGES = new URL('../../../profiles/languages/', import.meta.url).pathname;
const scenarios = loadScenarios();
const VERDICTS = new Set(['ok', 'wrong_answer', 'compile_error', 'runtime_error', 'time_limit', 'memory_limit', 'output_limit']);

test('the four scenarios, each with its k6 script that runs it by name', () => {
  assert.deepEqual(Object.keys(scenarios).sort(), ['hello', 'judge', 'mix', 'spike']);
  for (const name of Object.keys(scenarios)) {
    const script = readFileSync(join(K6, `${name}.js`), 'utf8');
    assert.match(script, new RegExp(`optionsFor\\('${name}'\\)`));
    assert.match(script, new RegExp(`iterate\\('${name}'\\)`));
  }
  const scripts = readdirSync(K6)
    .filter((f) => f.endsWith('.js') && f !== 'lib.js')
    .map((f) => f.replace(/\.js$/, ''));
  assert.deepEqual(scripts.sort(), Object.keys(scenarios).sort(), 'no script without a scenario');
});

test('every run asks for a language Brig has and a verdict Brig gives; judge mode has 10 tests', () => {
  for (const [name, scenario] of Object.entries(scenarios)) {
    assert.ok(scenario.requests.length > 0, name);
    for (const r of scenario.requests) {
      const language = (r.body as { language: string }).language;
      assert.ok(existsSync(join(LANGUAGES, `${language}.json`)), `${name}/${r.name}: language ${language}`);
      assert.ok(VERDICTS.has(r.expect.verdict), `${name}/${r.name}: verdict ${r.expect.verdict}`);
      assert.ok(r.weight > 0);
    }
  }
  assert.equal((scenarios.judge!.requests[0]!.body as { tests: unknown[] }).tests.length, 10);
  const verdicts = new Set(scenarios.mix!.requests.map((r) => r.expect.verdict));
  assert.ok(verdicts.size >= 5, `mix covers ${[...verdicts].join(', ')}`);
});

test('k6 durations', () => {
  assert.equal(durationMs('30s'), 30_000);
  assert.equal(durationMs('1m30s'), 90_000);
  assert.equal(durationMs('500ms'), 500);
  assert.throws(() => durationMs('1 minute'));
  assert.throws(() => durationMs('30'));
});

test('loads become autocannon steps: iterations, a duration, a ramp followed in short steps', () => {
  assert.deepEqual(steps({ executor: 'shared-iterations', vus: 4, iterations: 500, maxDuration: '10m' }), [
    { connections: 4, amount: 500, seconds: 600 },
  ]);
  assert.deepEqual(steps({ executor: 'shared-iterations', vus: 4, iterations: 500, maxDuration: '10m' }, { vus: 8, iterations: 100 }), [
    { connections: 8, amount: 100, seconds: 600 },
  ]);
  assert.deepEqual(steps({ executor: 'constant-vus', vus: 4, duration: '1m' }, { duration: '10s' }), [{ connections: 4, seconds: 10 }]);
  const ramp = steps({
    executor: 'ramping-vus',
    stages: [
      { duration: '10s', target: 4 },
      { duration: '10s', target: 4 },
      { duration: '10s', target: 0 },
    ],
  });
  assert.deepEqual(
    ramp.map((s) => s.connections),
    [2, 4, 4, 4, 2],
  );
  assert.ok(ramp.every((s) => s.seconds === 5));
  for (const name of Object.keys(scenarios)) {
    const plan = steps(scenarios[name]!.load);
    assert.ok(plan.length > 0 && plan.every((s) => s.connections > 0), name);
  }
  const spike = steps(scenarios.spike!.load).map((s) => s.connections);
  assert.equal(Math.max(...spike), 32);
});

test('requests are picked by weight', () => {
  const requests = [
    { name: 'a', weight: 3 },
    { name: 'b', weight: 1 },
  ] as RunRequest[];
  assert.equal(pick(requests, 0).name, 'a');
  assert.equal(pick(requests, 0.74).name, 'a');
  assert.equal(pick(requests, 0.76).name, 'b');
  assert.equal(pick(requests, 0.999).name, 'b');
});

test('an answer passes its checks only with the status, verdict and stdout asked for', () => {
  const request = { name: 'x', weight: 1, body: {}, expect: { status: 200, verdict: 'ok', stdout: 'hi\n' } };
  assert.equal(judge(request, 200, JSON.stringify({ verdict: 'ok', run: { stdout: 'hi\n' } })), null);
  assert.equal(judge(request, 503, '{}'), 'status 503');
  assert.equal(judge(request, 200, JSON.stringify({ verdict: 'time_limit' })), 'verdict time_limit');
  assert.match(judge(request, 200, JSON.stringify({ verdict: 'ok', run: { stdout: 'ho\n' } }))!, /^stdout/);
  assert.equal(judge(request, 200, 'not json'), 'not JSON');
});
