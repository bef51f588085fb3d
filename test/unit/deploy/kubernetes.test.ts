/**
 * deploy/k8s/ cross-checked, as no cluster runs here: every manifest
 * parses and is in the kustomization; selectors select the pods they mean;
 * named ports, probes and policies name ports that exist; the worker's
 * privileges and timing agree with Brig's settings; and KEDA watches the
 * Redis keys where Brig's waiting runs really are.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { kedaRedisTriggers, manifestDocuments } from '../../../scripts/deploy/manifests.ts';
import { loadRuntimeConfig, loadServiceConfig } from '../../../services/shared/config.ts';
import { QUEUE_NAME } from '../../../services/shared/contract.ts';
import { deployPath, dockerEnv, dockerfile, documentedVariables, isDocumented } from './deploy-files.ts';

const K8S = deployPath('k8s');
const files = readdirSync(K8S).filter((f) => f.endsWith('.yaml'));
const docs = files
  .filter((f) => f !== 'kustomization.yaml')
  .flatMap((f) => manifestDocuments(`${K8S}/${f}`).map((doc) => ({ file: f, doc })));
const kustomization = manifestDocuments(`${K8S}/kustomization.yaml`)[0]!;
const byKind = (kind: string) => docs.filter((d) => d.doc.kind === kind).map((d) => d.doc);
const named = (kind: string, name: string) => byKind(kind).find((d) => d.metadata.name === name)!;
const workloads = [...byKind('Deployment'), ...byKind('StatefulSet')];
const runtimeDefaults = loadRuntimeConfig({});
const serviceDefaults = loadServiceConfig({});
const image = dockerEnv(dockerfile());

const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);
const podsSelectedBy = (selector: Record<string, string>) => workloads.filter((w) => matches(selector, w.spec.template.metadata.labels));
const containerPorts = (workload: any) =>
  workload.spec.template.spec.containers.flatMap((c: any) => c.ports ?? []) as { name: string; containerPort: number }[];
const envOf = (container: any) =>
  Object.fromEntries((container.env ?? []).map((e: any) => [e.name, e.value ?? null])) as Record<string, string | null>;

test('every manifest parses, names its kind, and the kustomization applies each file into one namespace', () => {
  for (const { file, doc } of docs) {
    assert.ok(doc.apiVersion && doc.kind && doc.metadata?.name, `${file}: ${JSON.stringify(doc).slice(0, 80)}`);
    if (doc.kind !== 'Namespace') assert.equal(doc.metadata.namespace, kustomization.namespace, `${file} ${doc.kind}/${doc.metadata.name}`);
  }
  assert.deepEqual([...kustomization.resources].sort(), files.filter((f) => f !== 'kustomization.yaml').sort());
  assert.equal(named('Namespace', kustomization.namespace).metadata.name, kustomization.namespace);
  const images = new Set(workloads.flatMap((w) => w.spec.template.spec.containers.map((c: any) => c.image)));
  assert.deepEqual(
    [...images].sort(),
    kustomization.images.map((i: any) => i.name).sort(),
    'the kustomization points every image somewhere',
  );
});

test('each workload selects its own pods, and each Service and PodDisruptionBudget selects pods that exist', () => {
  for (const w of workloads) assert.ok(matches(w.spec.selector.matchLabels, w.spec.template.metadata.labels), w.metadata.name);
  for (const service of byKind('Service')) {
    const pods = podsSelectedBy(service.spec.selector);
    assert.equal(pods.length, 1, `Service ${service.metadata.name} selects ${pods.length} workloads`);
    for (const port of service.spec.ports) {
      assert.ok(
        containerPorts(pods[0]).some((p) => p.name === port.targetPort),
        `Service ${service.metadata.name}: no container port named ${port.targetPort}`,
      );
    }
  }
  for (const pdb of byKind('PodDisruptionBudget')) {
    assert.deepEqual(
      podsSelectedBy(pdb.spec.selector.matchLabels).map((w) => w.metadata.name),
      ['brig-api'],
    );
    assert.ok(pdb.spec.minAvailable < named('Deployment', 'brig-api').spec.replicas, 'a drain can still evict one API pod');
  }
});

test("the API: the image's port, probes on /healthz and /readyz, and no privilege", () => {
  const api = named('Deployment', 'brig-api');
  const [container] = api.spec.template.spec.containers;
  assert.deepEqual(container.args, ['api']);
  assert.deepEqual(containerPorts(api), [{ name: 'http', containerPort: Number(image.PORT) }]);
  assert.equal(container.livenessProbe.httpGet.path, '/healthz');
  assert.equal(container.readinessProbe.httpGet.path, '/readyz');
  assert.equal(container.livenessProbe.httpGet.port, 'http');
  assert.deepEqual(container.securityContext.capabilities, { drop: ['ALL'] });
  assert.equal(container.securityContext.allowPrivilegeEscalation, false);
  assert.equal(api.spec.template.spec.securityContext.runAsNonRoot, true);
  assert.ok(api.spec.template.spec.terminationGracePeriodSeconds * 1000 > serviceDefaults.shutdownGraceMs);
});

test("the worker: a user namespace, least privilege, sandbox uids inside the pod's 65536, a drain before SIGKILL", () => {
  const worker = named('Deployment', 'brig-worker');
  const pod = worker.spec.template.spec;
  const [container] = pod.containers;
  const env = envOf(container);
  assert.deepEqual(container.args, ['worker']);
  assert.equal(pod.hostUsers, false, 'Kubernetes allows procMount: Unmasked only with hostUsers: false');
  assert.equal(container.securityContext.privileged, undefined);
  assert.equal(container.securityContext.procMount, 'Unmasked');
  assert.equal(container.securityContext.seccompProfile.type, 'RuntimeDefault');
  assert.equal(container.securityContext.appArmorProfile.type, 'Unconfined', "the runtime's default AppArmor profile denies mount");
  assert.notEqual(
    container.securityContext.allowPrivilegeEscalation,
    false,
    'Kubernetes refuses allowPrivilegeEscalation: false with CAP_SYS_ADMIN',
  );
  const uidBase = Number(env.BRIG_UID_BASE);
  const ids = 65536;
  assert.ok(
    uidBase + 2 * runtimeDefaults.maxSlots < ids,
    `BRIG_UID_BASE ${uidBase} + 2 × ${runtimeDefaults.maxSlots} slots must fit in ${ids} ids`,
  );
  assert.ok(pod.terminationGracePeriodSeconds * 1000 > Number(env.BRIG_SHUTDOWN_GRACE_MS));
  assert.deepEqual(containerPorts(worker), [{ name: 'metrics', containerPort: Number(image.BRIG_WORKER_METRICS_PORT) }]);
  assert.equal(container.livenessProbe.httpGet.port, 'metrics');
  const mounts = container.volumeMounts.map((m: any) => m.mountPath);
  assert.ok(mounts.includes(image.BRIG_STATE_DIR) && mounts.includes('/tmp'), 'a read-only root needs the state dir and /tmp writable');
  assert.equal(container.securityContext.readOnlyRootFilesystem, true);
});

test('every Brig variable the manifests set is one the README documents', () => {
  const documented = documentedVariables();
  for (const w of workloads.filter((x) => x.metadata.name !== 'brig-redis')) {
    for (const e of w.spec.template.spec.containers[0].env) assert.ok(isDocumented(e.name, documented), `${w.metadata.name}: ${e.name}`);
  }
});

test("KEDA watches the keys where Brig's waiting runs are: BullMQ's prioritized set of QUEUE_NAME, and its wait list", async () => {
  // The keys of Brig's queue, as BullMQ names them (no prefix option anywhere in Brig: BullMQ's default).
  const connection = new Redis({ lazyConnect: true });
  const queue = new Queue(QUEUE_NAME, { connection });
  const expected = [queue.keys.prioritized!, queue.keys.wait!];
  await queue.close();
  connection.disconnect();
  assert.deepEqual(expected, [`bull:${QUEUE_NAME}:prioritized`, `bull:${QUEUE_NAME}:wait`]);
  const triggers = kedaRedisTriggers(deployPath('k8s', 'keda.yaml'));
  assert.deepEqual(
    triggers.map((t) => t.listName),
    expected,
  );

  const scaled = named('ScaledObject', 'brig-worker');
  assert.equal(named('Deployment', scaled.spec.scaleTargetRef.name).metadata.name, 'brig-worker');
  const slots = Number(envOf(named('Deployment', 'brig-worker').spec.template.spec.containers[0]).BRIG_SLOTS);
  const redisService = named('Service', 'brig-redis');
  for (const t of triggers) {
    assert.equal(t.listLength, slots, 'one worker per BRIG_SLOTS waiting runs');
    assert.equal(
      t.address,
      `${redisService.metadata.name}.${redisService.metadata.namespace}.svc.cluster.local:${redisService.spec.ports[0].port}`,
    );
  }
  // The password KEDA reads is the one Redis is started with.
  const auth = named('TriggerAuthentication', scaled.spec.triggers[0].authenticationRef.name);
  const redisEnv = named('StatefulSet', 'brig-redis').spec.template.spec.containers[0].env.find(
    (e: any) => e.name === 'BRIG_REDIS_PASSWORD',
  );
  assert.deepEqual({ name: auth.spec.secretTargetRef[0].name, key: auth.spec.secretTargetRef[0].key }, redisEnv.valueFrom.secretKeyRef);
});

test('Redis: a StatefulSet on a persistent volume, reached on the port its Service names', () => {
  const redis = named('StatefulSet', 'brig-redis');
  assert.equal(redis.spec.serviceName, 'brig-redis');
  assert.equal(redis.spec.volumeClaimTemplates[0].metadata.name, redis.spec.template.spec.containers[0].volumeMounts[0].name);
  assert.equal(redis.spec.template.spec.containers[0].volumeMounts[0].mountPath, '/var/lib/redis', 'the dir of deploy/redis/brig.conf');
  assert.equal(containerPorts(redis)[0]!.containerPort, 6379);
  assert.equal(redis.spec.template.spec.securityContext.runAsUser, 999, 'the uid deploy/redis/Dockerfile fixes');
});

test('NetworkPolicies: Redis admits the API and the workers alone; their egress is Redis, DNS and (workers) public callbacks', () => {
  const policy = (name: string) => named('NetworkPolicy', name);
  const redisPods = podsSelectedBy(policy('brig-redis').spec.podSelector.matchLabels);
  assert.deepEqual(
    redisPods.map((w) => w.metadata.name),
    ['brig-redis'],
  );
  const admitted = policy('brig-redis').spec.ingress[0].from.flatMap((f: any) =>
    podsSelectedBy(f.podSelector.matchLabels).map((w) => w.metadata.name),
  );
  assert.deepEqual(admitted.sort(), ['brig-api', 'brig-worker']);
  assert.deepEqual(
    policy('brig-redis').spec.ingress[0].ports.map((p: any) => p.port),
    [containerPorts(redisPods[0]!)[0]!.containerPort],
  );
  assert.deepEqual(policy('brig-redis').spec.egress, []);
  for (const [name, workload] of [
    ['brig-api', 'brig-api'],
    ['brig-worker', 'brig-worker'],
  ]) {
    const p = policy(name!);
    assert.deepEqual(
      podsSelectedBy(p.spec.podSelector.matchLabels).map((w) => w.metadata.name),
      [workload],
    );
    assert.deepEqual(p.spec.policyTypes, ['Ingress', 'Egress']);
    const toRedis = p.spec.egress.find((e: any) => e.to?.[0]?.podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'brig-redis');
    assert.equal(toRedis.ports[0].port, 6379);
    assert.deepEqual(
      p.spec.ingress[0].ports.map((x: any) => x.port),
      containerPorts(named('Deployment', workload!)).map((x) => x.containerPort),
    );
  }
  const callbacks = policy('brig-worker').spec.egress.find((e: any) => e.to?.[0]?.ipBlock);
  assert.ok(callbacks.to[0].ipBlock.except.includes('10.0.0.0/8'), "no private addresses, as BRIG_CALLBACK_ALLOW's default");
  assert.equal(
    policy('brig-api').spec.egress.some((e: any) => e.to?.[0]?.ipBlock),
    false,
    'the API calls nobody',
  );
});

test("the ServiceMonitor finds the API's and every worker's metrics port", () => {
  const monitor = named('ServiceMonitor', 'brig');
  const services = byKind('Service').filter((s) => matches(monitor.spec.selector.matchLabels, s.metadata.labels));
  assert.deepEqual(services.map((s) => s.metadata.name).sort(), ['brig-api', 'brig-worker-metrics']);
  for (const endpoint of monitor.spec.endpoints) {
    assert.equal(endpoint.path, '/metrics');
    assert.ok(
      services.some((s) => s.spec.ports.some((p: any) => p.name === endpoint.port)),
      `no Service port named ${endpoint.port}`,
    );
  }
  assert.equal(named('Service', 'brig-worker-metrics').spec.clusterIP, 'None', 'one endpoint per worker pod');
});
