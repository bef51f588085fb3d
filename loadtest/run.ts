/**
 * npm run loadtest -- --scenario NAME (--url URL | --serve): the k6 scenarios
 * of loadtest/k6/ run here with autocannon, for machines without a k6
 * binary. Prints a k6-style summary and fails on the scenario's thresholds.
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { emptyTally, runStep } from './autocannon-runner.ts';
import { type LoadOverrides, loadScenarios, steps } from './scenarios.ts';
import { type ServeProcess, startServeProcess, stopServeProcess } from './serve-process.ts';
import { formatSummary, judgeThresholds, summarize } from './summary.ts';

const USAGE = `Usage: npm run loadtest -- --scenario NAME (--url URL | --serve)
                           [--api-key KEY] [--vus N] [--iterations N] [--duration 1m]

Runs a scenario of loadtest/k6/scenarios.json (the one the k6 scripts run)
with autocannon: POST /v1/runs?wait=true with the scenario's runs, each
answer checked for its status, verdict and output. Scenarios: SCENARIOS.
--url is a running Brig (its rate limit must allow the load); --serve starts
a private brig serve for the test (rate limit off, BRIG_SLOTS = cores) and
stops it after. --api-key (or BRIG_API_KEY) is sent as a Bearer token. --vus,
--iterations and --duration override the scenario's load, as VUS,
ITERATIONS and DURATION do for the k6 scripts.

Exit codes: 0 every threshold held; 1 one did not; 2 bad usage.
`;
const EXIT = { OK: 0, FAILED: 1, USAGE: 2 } as const;
/** Sandbox uids of the --serve server, away from the 600000 of a brig serve that may run here. */
const SERVE_UID_BASE = 850_000;

class UsageError extends Error {}

function positiveInt(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new UsageError(`--${name} must be a positive integer, not ${JSON.stringify(text)}`);
  return value;
}

async function main(): Promise<number> {
  const scenarios = loadScenarios();
  const usage = USAGE.replace('SCENARIOS', Object.keys(scenarios).join(', '));
  let options: { name: string; url?: string; serve: boolean; apiKey?: string; overrides: LoadOverrides };
  try {
    const { values } = parseArgs({
      args: process.argv.slice(2),
      strict: true,
      options: {
        scenario: { type: 'string' },
        url: { type: 'string' },
        serve: { type: 'boolean', default: false },
        'api-key': { type: 'string' },
        vus: { type: 'string' },
        iterations: { type: 'string' },
        duration: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(usage);
      return EXIT.OK;
    }
    if (!values.scenario || !scenarios[values.scenario])
      throw new UsageError(`--scenario must be one of ${Object.keys(scenarios).join(', ')}`);
    if (Boolean(values.url) === values.serve) throw new UsageError('give either --url URL or --serve');
    options = {
      name: values.scenario,
      url: values.url?.replace(/\/$/, ''),
      serve: values.serve,
      apiKey: values['api-key'] ?? process.env.BRIG_API_KEY,
      overrides: {
        vus: positiveInt('vus', values.vus),
        iterations: positiveInt('iterations', values.iterations),
        duration: values.duration,
      },
    };
  } catch (error) {
    process.stderr.write(`loadtest: ${(error as Error).message}\n\n${usage}`);
    return EXIT.USAGE;
  }

  const scenario = scenarios[options.name]!;
  const plan = steps(scenario.load, options.overrides);
  let serve: ServeProcess | undefined;
  if (options.serve) {
    serve = await startServeProcess({
      name: 'loadtest',
      uidBase: SERVE_UID_BASE,
      env: { BRIG_SLOTS: String(availableParallelism()) },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
  const url = serve?.url ?? options.url!;
  const tally = emptyTally();
  try {
    process.stdout.write(
      `\n     scenario: ${options.name}: ${scenario.description}\n     load: ${scenario.load.executor}, ${plan.length} autocannon step(s), up to ${Math.max(...plan.map((s) => s.connections))} connections\n     target: ${url}${serve ? ' (brig serve started for this test)' : ''}\n\n`,
    );
    for (const step of plan) await runStep(url, options.apiKey, scenario, step, tally);
  } finally {
    if (serve) await stopServeProcess(serve);
  }
  const summary = summarize(tally);
  const thresholds = judgeThresholds(summary, scenario.thresholds);
  process.stdout.write(`${formatSummary(summary, tally, thresholds)}\n\n`);
  return thresholds.every((t) => t.ok) ? EXIT.OK : EXIT.FAILED;
}

process.exitCode = await main();
