/**
 * The compose stack as users start it (Redis, the API, two workers,
 * Prometheus), driven through its published API: runs of each kind, what
 * Prometheus sees, where waiting runs sit for KEDA, a worker killed mid-run,
 * every part stopped by SIGTERM; then torn down with nothing left.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { freePort } from '../../services/shared/redis-server.ts';
import { type Checklist, expect } from './checks.ts';
import { run } from './command.ts';
import { BRIG_IMAGE } from './images.ts';
import { alertExpressions, alertRules, dashboardExpressions, kedaRedisTriggers } from './manifests.ts';
import type { Podman } from './podman.ts';
import { BrigClient, PrometheusClient, type RunRecord, until } from './service-client.ts';
import { ComposeStack } from './stack.ts';

const PROJECT = 'brigdeploytest';
const SERVICES = ['redis', 'api', 'worker', 'prometheus'];
const NETWORKS = ['default'];
const WORKERS = 2;
const READY_TIMEOUT_MS = 120_000;
const SCRAPE_TIMEOUT_MS = 60_000;
/** Alert rules are first evaluated one evaluation_interval (15 s) after the start. */
const RULES_TIMEOUT_MS = 60_000;
/** A killed worker's runs come back after its locks expire (BRIG_JOB_LOCK_MS, 30 s) and a stalled check. */
const KILLED_WORKER_RUNS_TIMEOUT_MS = 150_000;
const LEFTOVER_SETTLE_MS = 15_000;
const SECRET_BYTES = 16;
/** Runs that sleep, more than the stack's slots (2 workers × 2 cores): some wait, some run on each worker. */
const SLEEPING_RUNS = 8;
const SLEEP_S = 4;
/** podman stop's timeout: the compose file's stop_grace_period. */
const STOP_TIMEOUT_S = 40;
/** The load test run against the stack: every language and verdict, briefly. */
const LOADTEST_SCENARIO = 'mix';
const LOADTEST_DURATION = '20s';
const LOADTEST_TIMEOUT_MS = 120_000;
/** A drain with nothing left to wait for takes a few seconds at most. */
const QUICK_STOP_MS = 10_000;

/** Dashboard expressions that have data as soon as a few runs are done. */
const MUST_HAVE_DATA = [
  'max(brig_workers_live)',
  'max by (state) (brig_queue_jobs)',
  'sum by (language) (rate(brig_runs_total[1m]))',
  'sum by (verdict) (rate(brig_runs_total[5m]))',
];

const HELLO = { language: 'python', source: 'print("hello from the stack")\n' };
const JUDGE = {
  language: 'c',
  source: '#include <stdio.h>\nint main(void) { long a, b; scanf("%ld %ld", &a, &b); printf("%ld\\n", a + b); return 0; }\n',
  tests: Array.from({ length: 10 }, (_, i) => ({ name: `t${i + 1}`, stdin: `${i} ${i * 10}`, expectedOutput: String(i * 11) })),
};
const MEMORY_BOMB = {
  language: 'python',
  source: 'chunks = []\nwhile True:\n    chunks.append(b"x" * (1 << 20))\n',
  limits: { memoryMb: 64 },
};
const sleeper = (i: number) => ({
  language: 'python',
  source: `import time\ntime.sleep(${SLEEP_S})\nprint(${i})\n`,
  limits: { wallMs: (SLEEP_S + 5) * 1000 },
});

export async function checkComposeStack(podman: Podman, checks: Checklist, repoRoot: string): Promise<void> {
  const deploy = join(repoRoot, 'deploy');
  const apiKey = randomBytes(SECRET_BYTES).toString('hex');
  const apiPort = await freePort();
  const prometheusPort = await freePort();
  const env = {
    BRIG_IMAGE,
    BRIG_API_KEYS: apiKey,
    BRIG_REDIS_PASSWORD: randomBytes(SECRET_BYTES).toString('hex'),
    BRIG_WORKERS: String(WORKERS),
    BRIG_API_PUBLISH: `127.0.0.1:${apiPort}`,
    BRIG_PROMETHEUS_PUBLISH: `127.0.0.1:${prometheusPort}`,
    BRIG_LOG_LEVEL: 'warn',
    // The load test is one client sending more than the default 600 requests a minute.
    BRIG_RATE_LIMIT_PER_MINUTE: '0',
  };
  const stack = new ComposeStack(podman, join(deploy, 'compose.yaml'), PROJECT, env, NETWORKS);
  const brig = new BrigClient(`http://127.0.0.1:${apiPort}`, apiKey);
  const prometheus = new PrometheusClient(`http://127.0.0.1:${prometheusPort}`);
  try {
    if (
      !(await checks.check(`compose up: ${SERVICES.join(', ')} (${WORKERS} workers)`, async () => {
        await stack.up(SERVICES);
        return `${(await stack.record()).length} containers`;
      }))
    )
      return;

    if (
      !(await checks.check('the API is ready, with both workers live', async () => {
        const ready = await until('/readyz to report 2 live workers', READY_TIMEOUT_MS, async () => {
          const r = await brig.readiness();
          return r?.status === 'ready' && r.workersLive === WORKERS ? r : null;
        }).catch(async (error: Error) => {
          throw new Error(`${error.message}; /readyz: ${JSON.stringify(await brig.readiness())}\n${await stack.diagnose()}`);
        });
        return `workersLive ${ready.workersLive}`;
      }))
    )
      return;

    await checks.check('every container passes its HEALTHCHECK', async () => {
      const names = [
        stack.containerName('redis'),
        stack.containerName('api'),
        ...Array.from({ length: WORKERS }, (_, i) => stack.containerName('worker', i + 1)),
      ];
      const unhealthy = [];
      for (const name of names) if (!(await stack.healthcheck(name))) unhealthy.push(name);
      expect(unhealthy.length === 0, `unhealthy: ${unhealthy.join(', ')}`);
      return names.join(', ');
    });

    await checks.check('a hello through the API', async () => {
      const r = await brig.submit(HELLO, true);
      expect(r.verdict === 'ok' && r.run?.stdout === 'hello from the stack\n', `got ${r.verdict}, ${JSON.stringify(r.run?.stdout)}`);
      return `verdict ok, ${r.finishedAt! - r.startedAt!} ms in the worker`;
    });

    await checks.check('a judge-mode run (C, 10 tests)', async () => {
      const r = await brig.submit(JUDGE, true);
      expect(
        r.verdict === 'ok' && r.tests?.length === JUDGE.tests.length && r.tests.every((t) => t.verdict === 'ok'),
        `got ${r.verdict}, tests ${JSON.stringify(r.tests?.map((t) => t.verdict))}`,
      );
      return `verdict ok, ${r.tests.length} tests ok`;
    });

    await checks.check('a memory bomb (64 MB)', async () => {
      const r = await brig.submit(MEMORY_BOMB, true);
      expect(r.verdict === 'memory_limit', `got ${r.verdict}`);
      return 'verdict memory_limit';
    });

    await checks.check('Prometheus scrapes the API and both workers', async () => {
      const up = await until('up == 1 for the API and both workers', SCRAPE_TIMEOUT_MS, async () => {
        const samples = await prometheus.query('up{job=~"brig-api|brig-worker"} == 1');
        const workers = samples.filter((s) => s.metric.job === 'brig-worker').map((s) => s.metric.instance!);
        return samples.some((s) => s.metric.job === 'brig-api') && new Set(workers).size === WORKERS ? workers : null;
      });
      const runs = await until('brig_runs_total from a worker', SCRAPE_TIMEOUT_MS, async () => {
        const samples = await prometheus.query('sum(brig_runs_total{job="brig-worker"})');
        return samples.length > 0 && Number(samples[0]!.value[1]) >= 3 ? samples[0]!.value[1] : null;
      });
      return `workers ${up.join(', ')}; brig_runs_total ${runs}`;
    });

    await checks.check('the alert rules are loaded and evaluate without error', async () => {
      const expected = alertRules(join(deploy, 'prometheus', 'alerts.yml'))
        .map(({ rule }) => rule.alert)
        .sort();
      const loaded = await until('every rule to be evaluated', RULES_TIMEOUT_MS, async () => {
        const rules = (await prometheus.rules()).flatMap((g) => g.rules);
        return rules.length === expected.length && rules.every((r) => r.health === 'ok') ? rules : null;
      });
      expect(
        JSON.stringify(loaded.map((r) => r.name).sort()) === JSON.stringify(expected),
        `loaded ${loaded.map((r) => r.name).join(', ')}`,
      );
      return `${loaded.length} rules, health ok`;
    });

    await checks.check('every dashboard and alert expression is valid PromQL with data where there must be', async () => {
      const expressions = [
        ...dashboardExpressions(join(deploy, 'grafana', 'brig.json')),
        ...alertExpressions(join(deploy, 'prometheus', 'alerts.yml')),
      ];
      for (const { source, expr } of expressions)
        await prometheus.query(expr).catch((error: Error) => {
          throw new Error(`${source}: ${error.message}`);
        });
      // Panels that must show something once runs have happened (a rate needs two scrapes after the first run).
      for (const expr of MUST_HAVE_DATA)
        await until(`data for ${expr}`, SCRAPE_TIMEOUT_MS, async () => ((await prometheus.query(expr)).length > 0 ? true : null));
      return `${expressions.length} expressions`;
    });

    await checks.check('promtool accepts prometheus.yml and alerts.yml', async () => {
      const result = await podman.podman([
        'run',
        '--rm',
        '-v',
        `${join(deploy, 'prometheus')}:/etc/prometheus:ro`,
        '--entrypoint',
        'promtool',
        'localhost/brig-prometheus:dev',
        'check',
        'config',
        '/etc/prometheus/prometheus.yml',
      ]);
      expect(result.code === 0, `${result.stdout}${result.stderr}`);
      return `${result.stdout.split('\n').filter((l) => l.includes('SUCCESS')).length} files SUCCESS`;
    });

    await checks.check(
      `npm run loadtest: the ${LOADTEST_SCENARIO} scenario for ${LOADTEST_DURATION} against the stack holds its thresholds`,
      async () => {
        const result = await run(
          process.execPath,
          [
            '--import',
            'tsx',
            join(repoRoot, 'loadtest', 'run.ts'),
            '--scenario',
            LOADTEST_SCENARIO,
            '--url',
            brig.url,
            '--api-key',
            apiKey,
            '--duration',
            LOADTEST_DURATION,
          ],
          { cwd: repoRoot, timeoutMs: LOADTEST_TIMEOUT_MS },
        );
        const summary = result.stdout
          .split('\n')
          .filter((l) => /http_req_duration|runs\.|checks\./.test(l))
          .map((l) => l.replace(/\.{3,}/, '').trim());
        expect(
          result.code === 0,
          `exit ${result.code}: ${result.stdout.trim().split('\n').slice(-12).join(' | ')}${result.stderr.slice(-500)}`,
        );
        return summary.join('; ');
      },
    );

    // Runs that sleep: more than the slots, so that some wait and every worker runs some.
    const sleepers: string[] = [];
    await checks.check(`runs waiting sit in the keys KEDA's ScaledObject watches`, async () => {
      for (let i = 0; i < SLEEPING_RUNS; i++) sleepers.push((await brig.submit(sleeper(i), false)).id);
      const triggers = kedaRedisTriggers(join(deploy, 'k8s', 'keda.yaml'));
      const seen = await until('runs waiting in Redis', 20_000, async () => {
        const lengths = [];
        for (const t of triggers) {
          // As KEDA's redis scaler counts: by the key's type (ZCARD for a sorted set, LLEN for a list).
          const type = await stack.redis(['TYPE', t.listName]);
          const length =
            type === 'zset'
              ? Number(await stack.redis(['ZCARD', t.listName]))
              : type === 'list'
                ? Number(await stack.redis(['LLEN', t.listName]))
                : 0;
          lengths.push({ key: t.listName, type, length });
        }
        return lengths.some((l) => l.length > 0) ? lengths : null;
      });
      const prioritized = seen.find((l) => l.key.endsWith(':prioritized'));
      expect(prioritized?.type === 'zset' && prioritized.length > 0, `bull:brig-runs:prioritized: ${JSON.stringify(prioritized)}`);
      const gauge = /^brig_queue_jobs\{state="prioritized"\} (\d+)$/m.exec(await brig.metrics());
      expect(gauge && Number(gauge[1]) > 0, 'the API does not report prioritized jobs');
      return `${seen.map((l) => `${l.key} (${l.type}) ${l.length}`).join('; ')}; brig_queue_jobs{state="prioritized"} ${gauge[1]}`;
    });

    await checks.check('a worker container killed mid-run (SIGKILL) loses no run', async () => {
      const victim = stack.containerName('worker', WORKERS);
      const victimHost = (await podman.mustPodman(['inspect', victim, '--format', '{{.Config.Hostname}}'])).stdout.trim();
      // Its heartbeat says it holds runs.
      await until(
        `${victim} to be running a sleeper`,
        30_000,
        async () => {
          const keys = (await stack.redis(['KEYS', 'brig:worker:*'])).split('\n').filter(Boolean);
          for (const key of keys) {
            const beat = JSON.parse(await stack.redis(['GET', key])) as { hostname: string; activeRuns: number };
            if (beat.hostname === victimHost && beat.activeRuns > 0) return beat;
          }
          return null;
        },
        100,
      );
      await stack.kill(victim, 'KILL');
      const records = await until(
        'every sleeper to finish',
        KILLED_WORKER_RUNS_TIMEOUT_MS,
        async () => {
          const all: RunRecord[] = [];
          for (const id of sleepers) all.push(await brig.record(id));
          return all.every((r) => r.status === 'done') ? all : null;
        },
        1_000,
      );
      const wrong = records.filter((r, i) => r.verdict !== 'ok' || r.run?.stdout !== `${i}\n`);
      expect(wrong.length === 0, `wrong results: ${JSON.stringify(wrong.map((r) => [r.id, r.verdict, r.run?.stdout]))}`);
      expect((await stack.state(victim)).exitCode === 137, 'the victim was not killed');
      return `${records.length} runs done and right after ${victim} was killed`;
    });

    await checks.check('the last worker drains on SIGTERM: its run in flight finishes, it exits 0', async () => {
      const worker = stack.containerName('worker', 1);
      const { id } = await brig.submit(sleeper(0), false);
      await until('the run to start', 30_000, async () => ((await brig.record(id)).status === 'running' ? true : null), 100);
      const stopped = await stack.stop(worker, STOP_TIMEOUT_S);
      const record = await brig.record(id);
      expect(stopped.exitCode === 0, `exit code ${stopped.exitCode}`);
      expect(record.status === 'done' && record.verdict === 'ok', `the run in flight is ${record.status} ${record.verdict}`);
      expect(stopped.ms < SLEEP_S * 1000 + QUICK_STOP_MS, `took ${stopped.ms} ms`);
      return `stopped in ${(stopped.ms / 1000).toFixed(1)} s, run done`;
    });

    await checks.check('the API, Prometheus and Redis stop on SIGTERM with exit 0', async () => {
      const times = [];
      for (const service of ['api', 'prometheus', 'redis']) {
        const stopped = await stack.stop(stack.containerName(service), STOP_TIMEOUT_S);
        expect(stopped.exitCode === 0 && stopped.ms < QUICK_STOP_MS, `${service}: exit ${stopped.exitCode} after ${stopped.ms} ms`);
        times.push(`${service} ${(stopped.ms / 1000).toFixed(1)} s`);
      }
      return times.join(', ');
    });
  } finally {
    await checks.check('compose down leaves nothing: containers, volumes, networks, cgroups, mounts, processes', async () => {
      await stack.down();
      const left = await until('the leftovers to go', LEFTOVER_SETTLE_MS, async () => {
        const found = await stack.leftovers();
        return found.length === 0 ? found : null;
      }).catch(async () => stack.leftovers());
      expect(left.length === 0, left.map((l) => `${l.kind} ${l.what}`).join('; '));
      return `${(await stack.record()).length} containers removed`;
    });
  }
}
