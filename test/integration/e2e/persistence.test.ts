/**
 * `brig serve` as users run it, with its private Redis: what survives what.
 * The private Redis keeps an append-only file (fsync every second) in the
 * state dir, and brig serve starts it again if it dies. So a SIGKILL of that
 * Redis (a second after the last run was accepted) and a restart of brig
 * serve itself (SIGTERM, then start again on the same state dir; even just
 * after its Redis came back, when BullMQ's close can hang: bullmq#4656)
 * lose no accepted run and no finished result. A SIGKILL of brig serve
 * leaves its Redis running; the next start stops that one first.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../helpers/redis.ts';
import { uidBase } from '../../helpers/uid-bases.ts';

const BRIG = new URL('../../../bin/brig.js', import.meta.url).pathname;
const CGROUP_PARENT = `brig-test-persist-${process.pid}`;
/** appendfsync everysec: what was accepted a second ago is on disk. */
const FSYNC_WAIT_MS = 1_500;
const RUN = { language: 'python', source: 'import time\ntime.sleep(0.1)\nprint("kept")\n', limits: { wallMs: 3_000 } };

const stateDir = mkdtempSync(join(tmpdir(), 'brig-test-persist-'));
chmodSync(stateDir, 0o711);
let serve: ChildProcess | null = null;
let url = '';

after(async () => {
  await stopServe();
  rmSync(stateDir, { recursive: true, force: true });
});

async function startServe(port: number): Promise<void> {
  const env = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    REDIS_URL: '',
    BRIG_STATE_DIR: stateDir,
    BRIG_CGROUP_PARENT: CGROUP_PARENT,
    BRIG_UID_BASE: String(uidBase('e2e/persistence', 1)),
    BRIG_SLOTS: '1',
    BRIG_WORKER_METRICS_PORT: '0',
    BRIG_RATE_LIMIT_PER_MINUTE: '0',
    LOG_LEVEL: 'warn',
    BRIG_SHUTDOWN_GRACE_MS: '3000',
    BRIG_JOB_LOCK_MS: '4000',
    BRIG_STALLED_CHECK_MS: '1000',
  };
  serve = spawn(process.execPath, [BRIG, 'serve'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  url = `http://127.0.0.1:${port}`;
  await until('brig serve to be ready', async () => (await request('GET', '/readyz'))?.status === 200, 60_000);
}

async function stopServe(): Promise<void> {
  if (!serve || serve.exitCode !== null || serve.signalCode !== null) return;
  const exited = new Promise((resolve) => serve!.once('exit', resolve));
  serve.kill('SIGTERM');
  await exited;
}

/** An answer, or null while brig serve or its Redis is not there. */
async function request(method: string, path: string, body?: unknown): Promise<{ status: number; json: any } | null> {
  try {
    const res = await fetch(url + path, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, json: await res.json() };
  } catch {
    return null;
  }
}

async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function submit(count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const answer = await request('POST', '/v1/runs', RUN);
    assert.equal(answer?.status, 202, JSON.stringify(answer?.json));
    ids.push(answer!.json.id);
  }
  return ids;
}

/** Every run ends done and ok; a 503 while Redis comes back is waited out. */
async function allDone(ids: string[]): Promise<void> {
  for (const id of ids) {
    await until(
      `run ${id} to finish`,
      async () => {
        const answer = await request('GET', `/v1/runs/${id}`);
        assert.notEqual(answer?.status, 404, `run ${id} was lost`);
        return answer?.status === 200 && answer.json.status === 'done';
      },
      60_000,
    );
    const { json } = (await request('GET', `/v1/runs/${id}`))!;
    assert.equal(json.verdict, 'ok', JSON.stringify(json));
    assert.equal(json.run.stdout, 'kept\n');
  }
}

function redisPid(): number {
  const children = readdirSync(`/proc/${serve!.pid}/task`).flatMap((task) =>
    readFileSync(`/proc/${serve!.pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean),
  );
  const pid = children.map(Number).find((child) => readFileSync(`/proc/${child}/comm`, 'utf8').trim().startsWith('redis-server'));
  assert.ok(pid, 'brig serve runs a private redis-server');
  return pid;
}

test('a SIGKILL of the private Redis and a restart of brig serve lose no accepted run', async () => {
  const port = await freePort();
  await startServe(port);
  assert.ok(existsSync(join(stateDir, 'redis')), 'the private Redis keeps its data in the state dir');

  const beforeKill = await submit(10);
  await sleep(FSYNC_WAIT_MS);
  process.kill(redisPid(), 'SIGKILL');
  await allDone(beforeKill);

  const beforeRestart = await submit(10);
  await stopServe();
  await startServe(port);
  await allDone([...beforeKill, ...beforeRestart]);

  const beforeCrash = await submit(5);
  await sleep(FSYNC_WAIT_MS);
  const orphan = redisPid();
  const crashed = new Promise((resolve) => serve!.once('exit', resolve));
  serve!.kill('SIGKILL');
  await crashed;
  await startServe(port);
  assert.ok(
    !existsSync(`/proc/${orphan}/cwd`) || readFileSync(`/proc/${orphan}/cmdline`, 'utf8') === '',
    'the orphaned redis-server was stopped',
  );
  await allDone([...beforeKill, ...beforeRestart, ...beforeCrash]);
  // /readyz may have counted the killed worker's heartbeat, still fresh: a run proves the new one works.
  await allDone(await submit(1));

  await stopServe();
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.includes(stateDir));
  assert.deepEqual(mounts, [], 'no mount left under the state dir');
  assert.equal(existsSync(`/sys/fs/cgroup/memory/${CGROUP_PARENT}`), false, 'no cgroup left');
});
