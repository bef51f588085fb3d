/**
 * The dashboard (deploy/grafana/brig.json) and the alert rules
 * (deploy/prometheus/alerts.yml) against the metrics Brig exports: every
 * metric they name exists, with the labels they group or filter by, and
 * every label value they match is one Brig sets. `npm run test:deploy`
 * evaluates the same expressions in a live Prometheus.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { alertExpressions, alertRules, dashboardExpressions, type PromExpression } from '../../../scripts/deploy/manifests.ts';
import { createMetrics } from '../../../services/shared/metrics.ts';
import { deployPath } from './deploy-files.ts';

const metrics = createMetrics();
/** Metric name → its label names; histograms also under _bucket (with le), _sum and _count. */
const exported = new Map<string, string[]>();
for (const metric of metrics.registry.getMetricsAsArray()) {
  const { name, labelNames = [], type } = metric as unknown as { name: string; labelNames?: string[]; type: string };
  exported.set(name, [...labelNames]);
  if (type === 'histogram') {
    exported.set(`${name}_bucket`, [...labelNames, 'le']);
    exported.set(`${name}_sum`, [...labelNames]);
    exported.set(`${name}_count`, [...labelNames]);
  }
}
/** Labels Prometheus adds to every series it scrapes, and its own per-target series. */
const TARGET_LABELS = ['instance', 'job'];
exported.set('up', []);
const SCRAPE_JOBS = (
  parse(readFileSync(deployPath('prometheus', 'prometheus.yml'), 'utf8')) as { scrape_configs: { job_name: string }[] }
).scrape_configs.map((c) => c.job_name);

/** Label values Brig sets: BullMQ states the API reports, phases the worker times, verdicts. */
const LABEL_VALUES: Record<string, Set<string>> = {
  state: new Set(['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed', 'waiting-children']),
  // From brig_phase_duration_seconds' help text, which names them.
  phase: new Set(/: (.*)$/.exec((metrics.phaseDuration as unknown as { help: string }).help)![1]!.split(', ')),
  job: new Set(SCRAPE_JOBS),
};

const dashboard = dashboardExpressions(deployPath('grafana', 'brig.json'));
const alerts = alertExpressions(deployPath('prometheus', 'alerts.yml'));
const PROMQL_WORDS = new Set([
  'sum',
  'max',
  'min',
  'avg',
  'by',
  'without',
  'rate',
  'increase',
  'deriv',
  'histogram_quantile',
  'and',
  'or',
  'unless',
  'on',
  'ignoring',
  'absent',
  'count',
  'le',
  'bool',
  'offset',
]);

/** Metric names in an expression: identifiers followed by { [ or a space/paren, that are not PromQL's words or label names. */
function metricNames(expr: string): string[] {
  const withoutStrings = expr
    .replace(/"[^"]*"/g, '""')
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\[[^\]]*\]/g, '[]')
    .replace(/(by|without)\s*\([^)]*\)/g, '');
  return [...withoutStrings.matchAll(/\b([a-z_][a-z0-9_]*)\b/g)]
    .map((m) => m[1]!)
    .filter((w) => !PROMQL_WORDS.has(w) && (w.includes('_') || w === 'up'));
}

function check(e: PromExpression): void {
  const names = metricNames(e.expr);
  assert.ok(names.length > 0, `${e.source}: no metric in ${e.expr}`);
  for (const name of names) assert.ok(exported.has(name), `${e.source}: ${name} is not a metric Brig exports`);
  const labelsOfAll = new Set([...names.flatMap((n) => exported.get(n) ?? []), ...TARGET_LABELS]);
  for (const [, list] of e.expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
    for (const label of list!
      .split(',')
      .map((l) => l.trim())
      .filter(Boolean))
      assert.ok(labelsOfAll.has(label), `${e.source}: grouped by ${label}, which ${names.join(', ')} lack`);
  }
  for (const [, label, op, value] of e.expr.matchAll(/(\w+)\s*(=~|=|!=)\s*"([^"]*)"/g)) {
    assert.ok(labelsOfAll.has(label!), `${e.source}: matches on ${label}, which ${names.join(', ')} lack`);
    const known = LABEL_VALUES[label!];
    if (!known) continue;
    const values = op === '=~' ? value!.split('|') : [value!];
    for (const v of values) assert.ok(known.has(v), `${e.source}: ${label}="${v}" is never set (known: ${[...known].join(', ')})`);
  }
}

test('every dashboard expression names metrics, labels and label values Brig exports', () => {
  for (const e of dashboard) check(e);
});

test('every alert expression names metrics, labels and label values Brig exports', () => {
  for (const e of alerts) check(e);
});

test('the dashboard has the panels an operator needs, all on the provisioned data source', () => {
  const board = JSON.parse(readFileSync(deployPath('grafana', 'brig.json'), 'utf8')) as {
    uid: string;
    panels: { title: string; datasource: { uid: string }; targets: { expr: string; datasource: { uid: string } }[] }[];
  };
  const datasource = (
    parse(readFileSync(deployPath('grafana', 'provisioning', 'datasources', 'prometheus.yaml'), 'utf8')) as {
      datasources: { uid: string }[];
    }
  ).datasources[0]!;
  for (const panel of board.panels) {
    assert.equal(panel.datasource.uid, datasource.uid, panel.title);
    for (const target of panel.targets) assert.equal(target.datasource.uid, datasource.uid, panel.title);
  }
  const shown = (metric: string) => board.panels.some((p) => p.targets.some((t) => t.expr.includes(metric)));
  const wanted: Record<string, string> = {
    throughput: 'brig_runs_total',
    'queue depth by state': 'brig_queue_jobs',
    'latency per phase': 'brig_phase_duration_seconds_bucket',
    verdicts: 'brig_runs_total',
    'sandbox errors': 'brig_sandbox_errors_total',
    'CPU per run': 'brig_run_cpu_seconds_bucket',
    'memory per run': 'brig_run_memory_peak_bytes_bucket',
    'live workers': 'brig_workers_live',
  };
  for (const [what, metric] of Object.entries(wanted)) assert.ok(shown(metric), `no panel shows ${what} (${metric})`);
  const ids = board.panels.map((p) => (p as unknown as { id: number }).id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
});

test('the alert rules: the four the issue names, each with a severity and a summary', () => {
  const rules = alertRules(deployPath('prometheus', 'alerts.yml')).map(({ rule }) => rule);
  for (const rule of rules) {
    assert.match(rule.labels?.severity ?? '', /^(warning|critical)$/, rule.alert);
    assert.ok(rule.annotations?.summary, rule.alert);
    if (rule.for !== undefined) assert.match(rule.for, /^\d+[smh]$/, rule.alert);
  }
  const has = (metric: string) => rules.some((r) => r.expr.includes(metric));
  assert.ok(has('brig_queue_jobs'), 'backlog growing');
  assert.ok(has('brig_workers_live'), 'no live worker');
  assert.ok(has('brig_sandbox_errors_total'), 'internal errors');
  assert.ok(
    rules.some((r) => /histogram_quantile\(0\.95/.test(r.expr)),
    'p95 above target',
  );
});
