/**
 * deploy/compose.yaml against the files and code it names: ports, service
 * names, paths, privileges, and the settings it gives Brig. `npm run
 * test:deploy` runs the stack for real; this checks the parts of the file it
 * cannot (Grafana, k6) and keeps the rest from drifting between runs.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { composeFile, manifestDocuments } from '../../../scripts/deploy/manifests.ts';
import { loadServiceConfig } from '../../../services/shared/config.ts';
import { deployPath, dockerEnv, dockerfile, documentedVariables, isDocumented } from './deploy-files.ts';

const COMPOSE = deployPath('compose.yaml');
const compose = composeFile(COMPOSE);
const { services } = compose;
const defaults = loadServiceConfig({});
const env = dockerEnv(dockerfile());

/** "host:port:container" or "port:container" → the container port. */
const containerPort = (mapping: string) => Number(mapping.split(':').at(-1));
/** A compose variable's default: ${NAME:-default} → default. */
const withDefaults = (text: string) => text.replace(/\$\{\w+:-([^}]*)\}/g, '$1');

test('the services a deployment needs, and those test:deploy starts, are there', () => {
  assert.deepEqual(Object.keys(services).sort(), ['api', 'grafana', 'k6', 'prometheus', 'redis', 'worker']);
  assert.deepEqual(services.k6.profiles, ['loadtest'], 'k6 runs only when asked for');
});

test('every build context, Dockerfile and mounted file exists', () => {
  for (const [name, service] of Object.entries(services)) {
    if (service.build) {
      const build = typeof service.build === 'string' ? { context: service.build } : service.build;
      const context = resolve(dirname(COMPOSE), build.context);
      assert.ok(existsSync(join(context, build.dockerfile ?? 'Dockerfile')), `${name}: no Dockerfile in ${context}`);
    }
    for (const volume of (service.volumes ?? []) as string[]) {
      const [source] = volume.split(':');
      if (source!.startsWith('.')) assert.ok(existsSync(resolve(dirname(COMPOSE), source!)), `${name}: ${source} does not exist`);
      else assert.ok(source! in (compose.volumes ?? {}), `${name}: volume ${source} is not declared`);
    }
  }
});

test("the API: its port is the image's PORT, Brig's default, and it runs with no privilege", () => {
  const api = services.api;
  assert.deepEqual(api.command, ['api']);
  assert.equal(containerPort(withDefaults(api.ports[0])), Number(env.PORT));
  assert.equal(Number(env.PORT), defaults.port);
  assert.deepEqual(api.cap_drop, ['ALL']);
  assert.equal(api.cap_add, undefined);
  assert.notEqual(api.user.split(':')[0], '0', 'not root');
  assert.ok(api.read_only);
  assert.ok(api.security_opt.includes('no-new-privileges'));
  assert.match(
    api.environment.BRIG_API_KEYS,
    /\$\{BRIG_API_KEYS:\?/,
    'keys are required: the API listens on every interface in the container',
  );
});

test("the workers: least privilege, a stop grace longer than Brig's drain, metrics where Prometheus looks", () => {
  const worker = services.worker;
  assert.deepEqual(worker.command, ['worker']);
  assert.deepEqual(worker.cap_drop, ['ALL']);
  assert.deepEqual([...worker.cap_add].sort(), ['CHOWN', 'DAC_OVERRIDE', 'KILL', 'SETGID', 'SETUID', 'SYS_ADMIN']);
  assert.ok(!worker.privileged, 'never --privileged');
  assert.ok(worker.security_opt.includes('systempaths=unconfined'));
  assert.ok(!worker.security_opt.some((o: string) => /seccomp|apparmor|label/.test(o)), "the engine's default seccomp profile");
  assert.equal(worker.cgroup, 'private');
  const graceMs = Number(withDefaults(worker.environment.BRIG_SHUTDOWN_GRACE_MS));
  assert.equal(graceMs, defaults.shutdownGraceMs);
  assert.ok(Number(/^(\d+)s$/.exec(worker.stop_grace_period)![1]) * 1000 > graceMs, 'stop_grace_period > BRIG_SHUTDOWN_GRACE_MS');
  assert.equal(Number(withDefaults(String(worker.deploy.replicas))), 2);
});

test("the workers' privileges are the same in compose and in Kubernetes", () => {
  const deployment = manifestDocuments(deployPath('k8s', 'worker.yaml')).find((d) => d.kind === 'Deployment')!;
  const container = deployment.spec.template.spec.containers[0];
  assert.deepEqual([...container.securityContext.capabilities.add].sort(), [...services.worker.cap_add].sort());
  assert.deepEqual(container.securityContext.capabilities.drop, ['ALL']);
  assert.equal(container.securityContext.procMount, 'Unmasked', "Kubernetes' systempaths=unconfined");
});

test('Redis: what REDIS_URL names, with an append-only file synced every second and noeviction', () => {
  const url = new URL(withDefaults(services.api.environment.REDIS_URL).replace(/\$\{[^}]+\}/, 'password'));
  assert.equal(url.hostname, 'redis');
  assert.ok('redis' in services);
  const conf = readFileSync(deployPath('redis', 'brig.conf'), 'utf8');
  assert.equal(Number(/^port (\d+)$/m.exec(conf)![1]), Number(url.port));
  assert.match(conf, /^appendonly yes$/m);
  assert.match(conf, /^appendfsync everysec$/m);
  assert.match(conf, /^maxmemory-policy noeviction$/m);
});

test("Prometheus scrapes the API's port and every worker replica on the metrics port", () => {
  const config = parse(readFileSync(deployPath('prometheus', 'prometheus.yml'), 'utf8')) as { rule_files: string[]; scrape_configs: any[] };
  const api = config.scrape_configs.find((c) => c.job_name === 'brig-api');
  assert.deepEqual(api.static_configs[0].targets, [`api:${env.PORT}`]);
  const workers = config.scrape_configs.find((c) => c.job_name === 'brig-worker');
  assert.deepEqual(workers.dns_sd_configs[0].names, ['worker']);
  assert.equal(workers.dns_sd_configs[0].port, Number(env.BRIG_WORKER_METRICS_PORT));
  assert.equal(Number(env.BRIG_WORKER_METRICS_PORT), defaults.workerMetricsPort);
  // One network: podman's CNI DNS cannot resolve across two (see compose.yaml).
  assert.deepEqual(Object.keys(compose.networks ?? {}), ['default']);
  for (const [name, service] of Object.entries(services)) assert.equal(service.networks, undefined, `${name} is on the one network`);
  // The rule file it loads is the one mounted.
  const mounts = (services.prometheus.volumes as string[]).map((v) => v.split(':'));
  assert.ok(mounts.some(([source, target]) => source === './prometheus/alerts.yml' && target === config.rule_files[0]));
  assert.ok(mounts.some(([source, target]) => source === './prometheus/prometheus.yml' && target === '/etc/prometheus/prometheus.yml'));
});

test('Grafana: provisioning and the dashboard are mounted where the provider looks, the data source is the Prometheus service', () => {
  const provider = (
    parse(readFileSync(deployPath('grafana', 'provisioning', 'dashboards', 'brig.yaml'), 'utf8')) as {
      providers: { options: { path: string } }[];
    }
  ).providers[0]!;
  const datasource = (
    parse(readFileSync(deployPath('grafana', 'provisioning', 'datasources', 'prometheus.yaml'), 'utf8')) as {
      datasources: { url: string; uid: string }[];
    }
  ).datasources[0]!;
  const mounts = (services.grafana.volumes as string[]).map((v) => v.split(':'));
  assert.ok(mounts.some(([source, target]) => source === './grafana/brig.json' && dirname(target!) === provider.options.path));
  assert.ok(mounts.some(([source, target]) => source === './grafana/provisioning' && target === '/etc/grafana/provisioning'));
  const url = new URL(datasource.url);
  assert.equal(url.hostname, 'prometheus');
  assert.ok(services.prometheus.ports.some((p: string) => containerPort(withDefaults(p)) === Number(url.port)));
});

test('k6: the mounted scripts are the loadtest ones, pointed at the API', () => {
  const [source, target] = (services.k6.volumes[0] as string).split(':');
  assert.equal(resolve(dirname(COMPOSE), source!), resolve(dirname(COMPOSE), '..', 'loadtest', 'k6'));
  const script = services.k6.command[1] as string;
  assert.ok(script.startsWith(`${target}/`));
  assert.ok(existsSync(join(resolve(dirname(COMPOSE), source!), script.slice(target!.length + 1))));
  assert.equal(services.k6.environment.BRIG_URL, `http://api:${env.PORT}`);
});

test('every Brig setting the compose file passes is one the README documents', () => {
  const documented = documentedVariables();
  for (const name of ['api', 'worker']) {
    for (const variable of Object.keys(services[name].environment)) assert.ok(isDocumented(variable, documented), `${name}: ${variable}`);
  }
  for (const variable of Object.keys(env))
    if (variable !== 'NODE_ENV') assert.ok(isDocumented(variable, documented), `Dockerfile ENV ${variable}`);
});
