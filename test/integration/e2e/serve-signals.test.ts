/**
 * Signals as a terminal and a supervisor send them. Ctrl-C sends SIGINT to
 * the whole foreground process group, not to one process; `kill -TERM -PGID`
 * (or a supervisor that signals the group) does the same with SIGTERM. So
 * `brig serve` runs here as a terminal's job does, leader of its own process
 * group, and the signal goes to the group while a run is in flight and
 * another waits. The launchers and the private Redis live in process groups
 * of their own, so only brig serve hears it and drains: the run in flight
 * finishes (or, once BRIG_SHUTDOWN_GRACE_MS is over, is handed back), the
 * waiting one stays queued, Redis stops last, and brig serve exits 0 with no
 * cgroup, mount or process left; a second Ctrl-C during the drain changes
 * nothing. A second brig serve on the same state dir then finishes what was
 * handed back.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { cgroupFolders, mountsUnder, processesNaming } from '../../../loadtest/host-state.ts';
import { freePort } from '../../helpers/redis.ts';
import { uidBase } from '../../helpers/uid-bases.ts';

const BRIG = new URL('../../../bin/brig.js', import.meta.url).pathname;
const CGROUP_PARENT = `brig-test-signals-${process.pid}`;
const UID_BASE = String(uidBase('e2e/serve-signals', 1));
const LAUNCHER_COMM = 'brig-launcher';
/** proc(5) stat: field 5 is the process group, 6 the session (counted after the command's closing parenthesis). */
const STAT_PGRP_AFTER_COMM = 2;
const STAT_SESSION_AFTER_COMM = 3;
/** The run in flight sleeps this long: long enough to be caught by the signal. */
const IN_FLIGHT_SLEEP_S = 2.5;
/** Past the grace period, brig serve still closes Redis and its connections: a few seconds at most. */
const EXIT_AFTER_GRACE_MS = 8_000;
const READY_TIMEOUT_MS = 60_000;
const RUN_DONE_TIMEOUT_MS = 30_000;
const POLL_MS = 50;
const CLEANUP_STOP_MS = 30_000;
/** An impatient user presses Ctrl-C again this soon. */
const SECOND_SIGNAL_AFTER_MS = 300;

const stateDirs: string[] = [];
const children: ChildProcess[] = [];

/** A failed test must not leave a brig serve running: SIGTERM (it cleans up), SIGKILL only if that does not end it. */
after(async () => {
  for (const child of children) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    if (await Promise.race([exited.then(() => true), sleep(CLEANUP_STOP_MS).then(() => false)])) continue;
    child.kill('SIGKILL');
    await exited;
  }
  for (const dir of stateDirs) if (mountsUnder(dir).length === 0) rmSync(dir, { recursive: true, force: true });
});

interface Serve {
  child: ChildProcess;
  url: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>;
}

/** brig serve on stateDir; `ownGroup` starts it as a terminal starts a job: leader of a new process group. */
async function startServe(stateDir: string, graceMs: number, ownGroup: boolean): Promise<Serve> {
  const port = await freePort();
  const env = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    REDIS_URL: '',
    BRIG_STATE_DIR: stateDir,
    BRIG_CGROUP_PARENT: CGROUP_PARENT,
    BRIG_UID_BASE: UID_BASE,
    BRIG_SLOTS: '1',
    BRIG_WORKER_METRICS_PORT: '0',
    BRIG_RATE_LIMIT_PER_MINUTE: '0',
    LOG_LEVEL: 'warn',
    BRIG_SHUTDOWN_GRACE_MS: String(graceMs),
    BRIG_JOB_LOCK_MS: '4000',
    BRIG_STALLED_CHECK_MS: '1000',
  };
  const child = spawn(process.execPath, [BRIG, 'serve'], { env, stdio: ['ignore', 'ignore', 'inherit'], detached: ownGroup });
  children.push(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, atMs: Date.now() }));
  });
  const url = `http://127.0.0.1:${port}`;
  for (const deadline = Date.now() + READY_TIMEOUT_MS; ; ) {
    assert.equal(child.exitCode, null, 'brig serve exited at start');
    if (
      await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return { child, url, exited };
    assert.ok(Date.now() < deadline, `brig serve not ready within ${READY_TIMEOUT_MS} ms`);
    await sleep(POLL_MS);
  }
}

async function postRun(url: string, source: string): Promise<string> {
  const res = await fetch(`${url}/v1/runs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ language: 'python', source, limits: { wallMs: 10_000 } }),
  });
  assert.equal(res.status, 202, await res.clone().text());
  return ((await res.json()) as { id: string }).id;
}

interface RunRecord {
  status: string;
  verdict?: string;
  finishedAt?: number;
  run?: { stdout: string } | null;
}

async function record(url: string, id: string): Promise<RunRecord> {
  return (await (await fetch(`${url}/v1/runs/${id}`)).json()) as RunRecord;
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null> | T | null): Promise<T> {
  for (const deadline = Date.now() + timeoutMs; ; ) {
    const value = await probe();
    if (value !== null) return value;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await sleep(POLL_MS);
  }
}

/** Process group and session of a process, from /proc/<pid>/stat. */
function groupOf(pid: number): { pgrp: number; session: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { pgrp: Number(fields[STAT_PGRP_AFTER_COMM]), session: Number(fields[STAT_SESSION_AFTER_COMM]) };
}

/** Launchers that brig serve (pid) has spawned and that still run. */
function launchersOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((p) => {
      try {
        return (
          readFileSync(`/proc/${p}/comm`, 'utf8').trim() === LAUNCHER_COMM &&
          /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] === String(pid)
        );
      } catch {
        return false; // gone while we looked
      }
    });
}

const alive = (pid: number) => existsSync(`/proc/${pid}`);

const CASES = [
  // Ctrl-C: the grace period is long enough for the run in flight to finish during the drain.
  { signal: 'SIGINT' as const, graceMs: 15_000, inFlightFinishesInDrain: true },
  // A supervisor's SIGTERM to the group, with a grace period shorter than the run: it is handed back.
  { signal: 'SIGTERM' as const, graceMs: 1_000, inFlightFinishesInDrain: false },
];

for (const { signal, graceMs, inFlightFinishesInDrain } of CASES) {
  test(`${signal} to brig serve's process group drains: the run in flight ${inFlightFinishesInDrain ? 'finishes' : 'is handed back'}, the queued one waits, Redis stops last, nothing is left`, async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'brig-test-signals-'));
    chmodSync(stateDir, 0o711);
    stateDirs.push(stateDir);
    const first = await startServe(stateDir, graceMs, true);
    const servePid = first.child.pid!;
    const inFlight = await postRun(first.url, `import time\ntime.sleep(${IN_FLIGHT_SLEEP_S})\nprint("in flight")\n`);
    const queued = await postRun(first.url, 'print("queued")\n');
    await until('the first run to be running', RUN_DONE_TIMEOUT_MS, async () =>
      (await record(first.url, inFlight)).status === 'running' ? true : null,
    );
    const [launcher] = await until('its launcher', RUN_DONE_TIMEOUT_MS, () => {
      const l = launchersOf(servePid);
      return l.length > 0 ? l : null;
    });
    const redisPid = Number(readFileSync(join(stateDir, 'redis', 'redis.pid'), 'utf8'));

    // Who hears a signal to the group: brig serve alone.
    assert.equal(groupOf(servePid).pgrp, servePid, 'brig serve leads its process group');
    assert.notEqual(groupOf(launcher!).pgrp, servePid, 'the launcher has a process group of its own');
    assert.notEqual(groupOf(redisPid).pgrp, servePid, 'the private Redis has a process group of its own');
    assert.notEqual(groupOf(redisPid).session, groupOf(servePid).session, 'the private Redis has a session of its own');

    process.kill(-servePid, signal);
    const signalledAtMs = Date.now();
    if (signal === 'SIGINT') {
      // A second Ctrl-C during the drain is logged and ignored, not a kill.
      await sleep(SECOND_SIGNAL_AFTER_MS);
      process.kill(-servePid, signal);
    }
    const exit = await Promise.race([first.exited, sleep(graceMs + EXIT_AFTER_GRACE_MS).then(() => null)]);
    if (exit === null) {
      process.kill(-servePid, 'SIGKILL');
      assert.fail(`brig serve did not exit within ${graceMs + EXIT_AFTER_GRACE_MS} ms of ${signal}`);
    }
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, `brig serve exits 0 after ${signal}`);
    const stopMs = exit.atMs - signalledAtMs;
    const expectedStopMs = inFlightFinishesInDrain ? IN_FLIGHT_SLEEP_S * 1000 + EXIT_AFTER_GRACE_MS : graceMs + EXIT_AFTER_GRACE_MS;
    assert.ok(stopMs < expectedStopMs, `stopped in ${stopMs} ms (at most ${expectedStopMs})`);

    // Nothing left behind: no cgroup folder, mount, launcher or Redis.
    assert.deepEqual(cgroupFolders(CGROUP_PARENT), [], 'no cgroup folder left');
    assert.deepEqual(mountsUnder(stateDir), [], 'no mount left');
    assert.deepEqual(processesNaming(stateDir), [], 'no process left');
    assert.equal(alive(launcher!), false, 'the launcher is gone');
    assert.equal(alive(redisPid), false, 'the private Redis stopped');

    // Handed back, not lost: a new brig serve on the same state dir finishes both runs.
    const second = await startServe(stateDir, graceMs, false);
    const finished = async (id: string) =>
      until(`run ${id} to finish`, RUN_DONE_TIMEOUT_MS, async () => {
        const r = await record(second.url, id);
        return r.status === 'done' ? r : null;
      });
    const inFlightRecord = await finished(inFlight);
    const queuedRecord = await finished(queued);
    assert.equal(inFlightRecord.verdict, 'ok');
    assert.equal(inFlightRecord.run?.stdout, 'in flight\n');
    assert.equal(queuedRecord.verdict, 'ok');
    assert.equal(queuedRecord.run?.stdout, 'queued\n');
    assert.ok(queuedRecord.finishedAt! > exit.atMs, 'the queued run ran after the restart');
    if (inFlightFinishesInDrain)
      assert.ok(inFlightRecord.finishedAt! < exit.atMs, 'the run in flight finished during the drain, while Redis was up');
    else assert.ok(inFlightRecord.finishedAt! > exit.atMs, 'the run in flight was handed back and ran again after the restart');

    second.child.kill('SIGTERM');
    assert.equal((await second.exited).code, 0);
    assert.deepEqual(cgroupFolders(CGROUP_PARENT), []);
    assert.deepEqual(processesNaming(stateDir), []);
  });
}
