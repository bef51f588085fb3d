/**
 * Readers of deploy/'s files, shared by test:deploy (which runs what they
 * say against the live stack) and the unit tests (which cross-check them
 * against each other and against Brig's code): every PromQL expression of the
 * dashboard and the alert rules, the Redis keys KEDA watches, the documents
 * of a Kubernetes manifest.
 */
import { readFileSync } from 'node:fs';
import { parse, parseAllDocuments } from 'yaml';

export interface PromExpression {
  /** Where it comes from: a panel's title, or an alert's name. */
  source: string;
  expr: string;
}

interface DashboardPanel {
  title: string;
  targets?: { expr: string }[];
}

export function dashboardExpressions(dashboardPath: string): PromExpression[] {
  const dashboard = JSON.parse(readFileSync(dashboardPath, 'utf8')) as { panels: DashboardPanel[] };
  return dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((t) => ({ source: `panel "${panel.title}"`, expr: t.expr })));
}

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export function alertRules(alertsPath: string): { group: string; rule: AlertRule }[] {
  const file = parse(readFileSync(alertsPath, 'utf8')) as { groups: { name: string; rules: AlertRule[] }[] };
  return file.groups.flatMap((group) => group.rules.map((rule) => ({ group: group.name, rule })));
}

export function alertExpressions(alertsPath: string): PromExpression[] {
  return alertRules(alertsPath).map(({ rule }) => ({ source: `alert ${rule.alert}`, expr: rule.expr.trim() }));
}

/** Every document of a (multi-document) YAML manifest. */
export function manifestDocuments(path: string): Record<string, any>[] {
  return parseAllDocuments(readFileSync(path, 'utf8')).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors[0]!.message}`);
    return doc.toJSON() as Record<string, any>;
  });
}

export interface RedisTrigger {
  address: string;
  listName: string;
  listLength: number;
}

/** The redis triggers of the ScaledObjects in a KEDA manifest. */
export function kedaRedisTriggers(kedaPath: string): RedisTrigger[] {
  return manifestDocuments(kedaPath)
    .filter((doc) => doc.kind === 'ScaledObject')
    .flatMap((doc) => doc.spec.triggers as { type: string; metadata: Record<string, string> }[])
    .filter((trigger) => trigger.type === 'redis')
    .map((trigger) => ({
      address: trigger.metadata.address!,
      listName: trigger.metadata.listName!,
      listLength: Number(trigger.metadata.listLength),
    }));
}

/** A compose file, with YAML merge keys (<<) resolved as compose resolves them. */
export function composeFile(path: string): {
  services: Record<string, any>;
  networks?: Record<string, unknown>;
  volumes?: Record<string, unknown>;
} {
  return parse(readFileSync(path, 'utf8'), { merge: true }) as ReturnType<typeof composeFile>;
}
