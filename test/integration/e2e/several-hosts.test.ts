/**
 * Several machines, simulated (issue 10, item 3). Redis, the API, two
 * workers and a client each run in a network namespace of their own, each
 * with one address on 10.222.0.0/24, plugged into a bridge in a "switch"
 * namespace (test/helpers/netns.ts). Every byte between them crosses that
 * switch: the API listens on its host's address with an API key, Redis on
 * its host's address with a password, and the test itself talks to the API
 * and the workers' metrics from the client host (through
 * test/helpers/netns-forwarder.mjs). Each worker host has its own state dir,
 * cgroup parent and uid range, as separate machines would; the API's host
 * is given profile, state and launcher paths that do not exist, so it can
 * only know languages and limits from the workers' heartbeats.
 *
 * What the namespaces do not separate: the kernel, its cgroup hierarchies
 * and the file system (processes enter only the network namespace; see
 * netns.ts), and the clock.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { IDS_PER_SLOT } from '../../../runtime/slots/lease.ts';
import { findCgroupDirs, mountsUnder, removeCgroupDirs, unmountUnder } from '../../helpers/host-leftovers.ts';
import { createSwitchedNetwork, type HostProcess, type SwitchedNetwork } from '../../helpers/netns.ts';
import { uidBase } from '../../helpers/uid-bases.ts';
import { followEvents, type ServerSentEvent, type UnixResponse, unixRequest } from '../../helpers/unix-http.ts';

const BRIG = new URL('../../../bin/brig.js', import.meta.url).pathname;
const FORWARDER = new URL('../../helpers/netns-forwarder.mjs', import.meta.url).pathname;

/** A private subnet; the namespaces have no route to the host's own network, so it cannot clash with one there. */
const ADDRESS = { redis: '10.222.0.2', api: '10.222.0.3', wa: '10.222.0.11', wb: '10.222.0.12', client: '10.222.0.100' } as const;
type Host = keyof typeof ADDRESS;
const WORKER_HOSTS = ['wa', 'wb'] as const;
type WorkerHost = (typeof WORKER_HOSTS)[number];
const REDIS_PORT = 6379;
const API_PORT = 8080;
const WORKER_METRICS_PORT = 9464;
const SLOTS_PER_HOST = 2;
const API_KEY = randomBytes(16).toString('hex');
const REDIS_PASSWORD = randomBytes(24).toString('hex');
const REDIS_URL = `redis://:${REDIS_PASSWORD}@${ADDRESS.redis}:${REDIS_PORT}`;
/** As test/helpers/service.ts: a dead worker's runs go to the other within about 5 s, not 35. */
const JOB_LOCK_MS = 4_000;
const STALLED_CHECK_MS = 1_000;
const CALLBACK_TIMEOUT_MS = 2_000;
/** A worker's stop after the cut: the callback consumer's close bound (timeout + 5 s), and its 2 s linger. */
const WORKER_STOP_TIMEOUT_MS = CALLBACK_TIMEOUT_MS + 5_000 + 2_000 + 5_000;
const RUNS_PER_BATCH = 12;
/** Rounds of runs after the heal until the healed host takes one. */
const ROUNDS_AFTER_HEAL = 5;
const START_TIMEOUT_MS = 60_000;
const RUN_TIMEOUT_MS = 60_000;
const NAMESPACE_PREFIX = 'brig-hosts';

const root = mkdtempSync(join(tmpdir(), 'brig-test-hosts-'));
/** Where the API's host is told its profiles, state and launcher are: nothing is there, and nothing may appear. */
const apiMissing = {
  BRIG_PROFILES_DIR: join(root, 'api', 'no-profiles'),
  BRIG_STATE_DIR: join(root, 'api', 'no-state'),
  BRIG_LAUNCHER: join(root, 'api', 'no-launcher'),
};
/** The client host's forwarder listens on these; each connection leaves the client host over TCP. */
const sockets = {
  api: join(root, 'client', 'api.sock'),
  redis: join(root, 'client', 'redis.sock'),
  wa: join(root, 'client', 'wa-metrics.sock'),
  wb: join(root, 'client', 'wb-metrics.sock'),
};
const cgroupParent = (host: WorkerHost) => `brig-test-hosts-${process.pid}-${host}`;
const stateDir = (host: WorkerHost) => join(root, host, 'state');
const ourCgroups = () => findCgroupDirs((name) => WORKER_HOSTS.some((h) => name === cgroupParent(h)));

let net: SwitchedNetwork | undefined;
const processes: Partial<Record<'redis' | 'api' | 'forwarder' | WorkerHost, HostProcess>> = {};

/** The test runner's environment without its Brig settings: each host gets only its own. */
function hostEnv(settings: Record<string, string>): NodeJS.ProcessEnv {
  const inherited = Object.entries(process.env).filter(
    ([name]) => !name.startsWith('BRIG_') && !['REDIS_URL', 'HOST', 'PORT', 'LOG_LEVEL'].includes(name),
  );
  return { ...Object.fromEntries(inherited), ...settings };
}

/** The tail of every process's output, for a failure's message. */
function diagnostics(): string {
  return Object.entries(processes)
    .map(([name, p]) => `--- ${name} (${p!.name}):\n${p!.log().slice(-3000)}`)
    .join('\n');
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms\n${diagnostics()}`);
    await sleep(200);
  }
}

const authorized = { authorization: `Bearer ${API_KEY}`, host: `${ADDRESS.api}:${API_PORT}` };

function apiCall(method: string, path: string, body?: unknown): Promise<UnixResponse> {
  return unixRequest(sockets.api, { method, path, body, headers: authorized });
}

/** AUTH and PING, from the client host: true when Redis answers +PONG. */
function redisAnswers(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let answer = '';
    socket.setTimeout(1_000, () => socket.destroy());
    socket.once('error', () => resolve(false));
    socket.once('close', () => resolve(false));
    socket.connect(sockets.redis, () => socket.write(`AUTH ${REDIS_PASSWORD}\r\nPING\r\n`));
    socket.on('data', (data) => {
      answer += data.toString('latin1');
      if (answer.split('\r\n').filter(Boolean).length < 2) return;
      resolve(answer.endsWith('+PONG\r\n'));
      socket.destroy();
    });
  });
}

async function liveWorkers(): Promise<number> {
  const ready = await apiCall('GET', '/readyz');
  return ready.json?.workersLive ?? -1;
}

/** A worker's counter of finished python runs with verdict ok, from its own /metrics, read from the client host. */
async function okRunsOn(host: WorkerHost): Promise<number> {
  const metrics = await unixRequest(sockets[host], {
    method: 'GET',
    path: '/metrics',
    headers: { host: `${ADDRESS[host]}:${WORKER_METRICS_PORT}` },
  });
  assert.equal(metrics.status, 200, metrics.text);
  const line = /^brig_runs_total\{[^}]*language="python"[^}]*verdict="ok"[^}]*\} (\d+)$/m.exec(metrics.text);
  return line ? Number(line[1]) : 0;
}

async function activeSandboxesOn(host: WorkerHost): Promise<number> {
  const metrics = await unixRequest(sockets[host], {
    method: 'GET',
    path: '/metrics',
    headers: { host: `${ADDRESS[host]}:${WORKER_METRICS_PORT}` },
  });
  return Number(/^brig_active_sandboxes (\d+)$/m.exec(metrics.text)?.[1] ?? Number.NaN);
}

/** The host whose worker has this id (`<hostname>-<pid>-<random>`: the hosts share a hostname, not pids). */
function hostOf(workerId: string): WorkerHost | 'unknown' {
  return WORKER_HOSTS.find((h) => workerId.includes(`-${processes[h]?.child.pid}-`)) ?? 'unknown';
}

function startWorker(host: WorkerHost): HostProcess {
  const index = WORKER_HOSTS.indexOf(host);
  mkdirSync(stateDir(host), { recursive: true });
  chmodSync(join(root, host), 0o711);
  chmodSync(stateDir(host), 0o711);
  // One kernel under both hosts: each takes its own half of the file's uid block.
  const base = uidBase('e2e/several-hosts', SLOTS_PER_HOST * WORKER_HOSTS.length) + index * SLOTS_PER_HOST * IDS_PER_SLOT;
  const worker = net!.spawn(
    host,
    process.execPath,
    [BRIG, 'worker'],
    hostEnv({
      HOST: ADDRESS[host],
      BRIG_WORKER_METRICS_PORT: String(WORKER_METRICS_PORT),
      REDIS_URL,
      BRIG_STATE_DIR: stateDir(host),
      BRIG_CGROUP_PARENT: cgroupParent(host),
      BRIG_UID_BASE: String(base),
      BRIG_SLOTS: String(SLOTS_PER_HOST),
      BRIG_SHUTDOWN_GRACE_MS: '3000',
      BRIG_JOB_LOCK_MS: String(JOB_LOCK_MS),
      BRIG_STALLED_CHECK_MS: String(STALLED_CHECK_MS),
      BRIG_SLOT_SWEEP_MS: '1000',
      // No run here has a callback, but a worker's stop waits up to this (plus 5 s) for BullMQ's
      // callback consumer to close: one whose connection was still reconnecting after the cut
      // (EHOSTUNREACH while the link was down) never closes by itself (bullmq#4656).
      BRIG_CALLBACK_TIMEOUT_MS: String(CALLBACK_TIMEOUT_MS),
      LOG_LEVEL: 'info',
    }),
  );
  processes[host] = worker;
  return worker;
}

before(async () => {
  chmodSync(root, 0o711);
  mkdirSync(join(root, 'client'), { mode: 0o700 });
  net = createSwitchedNetwork(
    NAMESPACE_PREFIX,
    Object.entries(ADDRESS).map(([name, address]) => ({ name, address })),
  );

  processes.forwarder = net.spawn(
    'client',
    process.execPath,
    [
      FORWARDER,
      `${sockets.api}=${ADDRESS.api}:${API_PORT}`,
      `${sockets.redis}=${ADDRESS.redis}:${REDIS_PORT}`,
      `${sockets.wa}=${ADDRESS.wa}:${WORKER_METRICS_PORT}`,
      `${sockets.wb}=${ADDRESS.wb}:${WORKER_METRICS_PORT}`,
    ],
    hostEnv({}),
  );
  await until('the client host forwards', () => processes.forwarder!.log().includes('ready\n'), 10_000);

  // Redis listens on its host's address only, with a password, as a Redis other machines reach must.
  const redisDir = join(root, 'redis');
  mkdirSync(redisDir, { mode: 0o700 });
  const redisConf = join(redisDir, 'redis.conf');
  writeFileSync(
    redisConf,
    [
      `bind ${ADDRESS.redis}`,
      `port ${REDIS_PORT}`,
      'protected-mode yes',
      `requirepass ${REDIS_PASSWORD}`,
      `dir ${redisDir}`,
      'save ""',
      'appendonly no',
      'maxmemory 512mb',
      'maxmemory-policy noeviction',
    ].join('\n'),
    { mode: 0o600 },
  );
  processes.redis = net.spawn('redis', 'redis-server', [redisConf], hostEnv({}));
  await until('redis answers from the client host', redisAnswers, 10_000);

  processes.api = net.spawn(
    'api',
    process.execPath,
    [BRIG, 'api'],
    hostEnv({ HOST: ADDRESS.api, PORT: String(API_PORT), REDIS_URL, BRIG_API_KEYS: API_KEY, LOG_LEVEL: 'warn', ...apiMissing }),
  );
  for (const host of WORKER_HOSTS) startWorker(host);
  await until('the API answers and counts both workers', async () => (await liveWorkers()) === 2, START_TIMEOUT_MS);
});

after(async () => {
  // Whatever the tests got to: every process, namespace, cgroup, mount and folder goes.
  await net?.close();
  await removeCgroupDirs(ourCgroups());
  unmountUnder(root);
  rmSync(root, { recursive: true, force: true });
});

test("the API's host has no profiles: languages and limits come from the workers' heartbeats, over the network", async () => {
  const anonymous = await unixRequest(sockets.api, { method: 'GET', path: '/v1/languages', headers: { host: authorized.host } });
  assert.equal(anonymous.status, 401, 'an API on an address other hosts reach must ask for a key');
  const response = await apiCall('GET', '/v1/languages');
  assert.equal(response.status, 200, response.text);
  const python = (response.json.languages ?? response.json).find((l: { name: string }) => l.name === 'python');
  assert.ok(python, response.text);
  assert.equal(python.workers, 2, response.text);
  assert.ok(python.versions.length > 0 && python.versions.every((v: string) => v.length > 0), response.text);
  assert.match(python.sourceFile, /\.py$/);
  assert.ok(python.limits.cpuMs > 0 && python.maxLimits.cpuMs >= python.limits.cpuMs, response.text);
  for (const path of Object.values(apiMissing)) assert.equal(existsSync(path), false, `the API made ${path}`);
});

/** Posts `count` runs and follows each one's events from the client host until it ends. */
async function submitAndFollow(count: number, source: string) {
  const body = { language: 'python', source, limits: { cpuMs: 1000, wallMs: 10_000 } };
  const posted = await Promise.all(Array.from({ length: count }, () => apiCall('POST', '/v1/runs', body)));
  for (const p of posted) assert.equal(p.status, 202, p.text);
  const ids: string[] = posted.map((p) => p.json.id);
  const events = new Map<string, ServerSentEvent[]>();
  const streams = ids.map((id) =>
    followEvents(sockets.api, { path: `/v1/runs/${id}/events`, headers: authorized, timeoutMs: RUN_TIMEOUT_MS }).then((list) => {
      events.set(id, list);
    }),
  );
  return { ids, events, ended: Promise.all(streams) };
}

/** The hosts that started a run, in order, from its 'started' events. */
function startedOn(events: ServerSentEvent[]): (WorkerHost | 'unknown')[] {
  return events.filter((e) => e.type === 'started').map((e) => hostOf(e.data.workerId));
}

async function getRecord(id: string) {
  const response = await apiCall('GET', `/v1/runs/${id}`);
  assert.equal(response.status, 200, response.text);
  return response.json;
}

test('runs submitted to the API are spread across both worker hosts', async () => {
  const before = { wa: await okRunsOn('wa'), wb: await okRunsOn('wb') };
  const batch = await submitAndFollow(RUNS_PER_BATCH, 'import time\ntime.sleep(0.5)\nprint("spread")\n');
  await batch.ended;
  const hosts = new Map<string, WorkerHost | 'unknown'>();
  for (const id of batch.ids) {
    const events = batch.events.get(id)!;
    const done = events.at(-1)!;
    assert.equal(done.type, 'done', JSON.stringify(events));
    assert.equal(done.data.record.verdict, 'ok', JSON.stringify(done));
    assert.equal(done.data.record.run.stdout, 'spread\n');
    const started = startedOn(events);
    assert.equal(started.length, 1, JSON.stringify(events));
    hosts.set(id, started[0]!);
  }
  const perHost = Object.fromEntries(WORKER_HOSTS.map((h) => [h, [...hosts.values()].filter((x) => x === h).length]));
  assert.ok(perHost.wa! > 0 && perHost.wb! > 0, `every run went to one host: ${JSON.stringify(perHost)}`);
  assert.equal(perHost.wa! + perHost.wb!, RUNS_PER_BATCH, JSON.stringify([...hosts]));
  // The workers' own counters, read from each worker's host, agree.
  assert.deepEqual({ wa: (await okRunsOn('wa')) - before.wa, wb: (await okRunsOn('wb')) - before.wb }, perHost);
});

test('a worker host cut off the network mid-run: every accepted run finishes on the other; healed, its late writes undo nothing', async () => {
  const batch = await submitAndFollow(RUNS_PER_BATCH, 'import time\ntime.sleep(1.5)\nprint("survived")\n');
  // Cut the cable once host A holds runs: their sandboxes go on, but nothing A does reaches Redis.
  await until(
    'host wa starts runs',
    async () => {
      const running = await Promise.all(batch.ids.map((id) => getRecord(id)));
      return running.filter((r) => r.status === 'running' && hostOf(r.progress?.workerId ?? '') === 'wa').length === SLOTS_PER_HOST;
    },
    20_000,
  );
  net!.cut('wa');
  const cutAt = Date.now();
  const heldByA = (await Promise.all(batch.ids.map((id) => getRecord(id))))
    .filter((r) => r.status === 'running' && hostOf(r.progress?.workerId ?? '') === 'wa')
    .map((r) => r.id);
  assert.equal(heldByA.length, SLOTS_PER_HOST);

  await batch.ended;
  const finishedInMs = Date.now() - cutAt;
  for (const id of batch.ids) {
    const events = batch.events.get(id)!;
    const done = events.at(-1)!;
    assert.equal(done.type, 'done', JSON.stringify(events));
    assert.equal(done.data.record.verdict, 'ok', JSON.stringify(done));
    assert.equal(done.data.record.run.stdout, 'survived\n');
    const started = startedOn(events);
    assert.equal(started.at(-1), 'wb', `run ${id} did not end on host wb: ${JSON.stringify(events)}`);
  }
  for (const id of heldByA) {
    const started = startedOn(batch.events.get(id)!);
    assert.deepEqual(started, ['wa', 'wb'], `run ${id} held by the cut host was not handed over: ${JSON.stringify(batch.events.get(id))}`);
  }
  assert.ok(finishedInMs < RUN_TIMEOUT_MS, `${finishedInMs} ms`);
  // The API stops counting the silent host once its heartbeat expires.
  await until('the API counts one live worker', async () => (await liveWorkers()) === 1, 15_000);

  // Plugged back in, host A's worker resumes: its TCP connections retransmit what
  // they held, the runs it was cut off in finish there too (a duplicate
  // execution: BullMQ's lock has moved on), and its final records land late.
  net!.restore('wa');
  await until('host wa is back', async () => (await liveWorkers()) === 2, 45_000);
  await until('host wa has finished what it held', async () => (await activeSandboxesOn('wa')) === 0, 30_000);
  for (const id of batch.ids) {
    const record = await getRecord(id);
    assert.equal(record.status, 'done', JSON.stringify(record));
    assert.equal(record.verdict, 'ok', JSON.stringify(record));
    assert.equal(record.run.stdout, 'survived\n');
  }
  // And it takes new runs again.
  const startedAfterHeal: string[] = [];
  for (let round = 0; round < ROUNDS_AFTER_HEAL && !startedAfterHeal.includes('wa'); round++) {
    const again = await submitAndFollow(2 * SLOTS_PER_HOST, 'import time\ntime.sleep(0.5)\nprint("again")\n');
    await again.ended;
    for (const id of again.ids) {
      const events = again.events.get(id)!;
      assert.equal(events.at(-1)?.data?.record?.verdict, 'ok', JSON.stringify(events));
      startedAfterHeal.push(...startedOn(events));
    }
  }
  assert.ok(startedAfterHeal.includes('wa'), `the healed host took none of ${startedAfterHeal.length} runs: ${startedAfterHeal.join(' ')}`);
});

test('stopped, each host leaves nothing: no process, cgroup, mount, namespace or folder', async () => {
  for (const host of WORKER_HOSTS) {
    const exit = await processes[host]!.stop('SIGTERM', WORKER_STOP_TIMEOUT_MS);
    assert.deepEqual(exit, { code: 0, signal: null }, `worker on ${host}:\n${processes[host]!.log().slice(-3000)}`);
  }
  assert.deepEqual(ourCgroups(), [], 'a worker host left its cgroup parent');
  for (const host of WORKER_HOSTS) assert.deepEqual(mountsUnder(stateDir(host)), []);
  const apiExit = await processes.api!.stop('SIGTERM');
  assert.deepEqual(apiExit, { code: 0, signal: null }, processes.api!.log());
  await processes.redis!.stop('SIGTERM');
  await processes.forwarder!.stop('SIGTERM');
  for (const host of Object.keys(ADDRESS) as Host[]) assert.deepEqual(net!.pids(host), [], `processes left on host ${host}`);
  for (const path of Object.values(apiMissing)) assert.equal(existsSync(path), false, `the API made ${path}`);

  const namespaces = net!.namespaces();
  assert.equal(namespaces.length, Object.keys(ADDRESS).length + 1, JSON.stringify(namespaces));
  await net!.close();
  assert.deepEqual(net!.namespaces(), []);
  assert.deepEqual(mountsUnder(root), []);
  rmSync(root, { recursive: true, force: true });
  assert.equal(existsSync(root), false);
});
