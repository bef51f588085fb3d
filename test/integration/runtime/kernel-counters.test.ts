/**
 * Per-user kernel counters ("ucounts": inotify instances and watches, user
 * namespaces, mqueue bytes, pending signals) are charged, one level up, to
 * the owner of the sandbox's user namespace. The launcher creates it as the
 * slot's host root id, so a sandbox that takes all it can get exhausts its
 * slot's allowance, never root's: while test/probes/counters.c holds every
 * inotify instance the kernel gives it, root on the host can still call
 * inotify_init(), and a process running as the slot's id cannot.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StepResult } from '../../../runtime/result.ts';
import { slotIdentity } from '../../../runtime/slots/lease.ts';
import { startTestRuntime, type TestRuntime } from '../../helpers/runtime.ts';
import { uidBase } from '../../helpers/uid-bases.ts';
import {
  hostProcessesOwnedBy,
  inotifyInstancesHeldBy,
  isAlive,
  liveHostProcessesOwnedBy,
  preparedSandboxProcesses,
  userNamespaceOwner,
} from './host-state.ts';
import { CompiledProbe, explain } from './probes.ts';

const SLOTS = 1;
/** The one slot of this runtime: a fresh state dir leases slot 0. */
const SLOT = slotIdentity(0, uidBase('runtime/kernel-counters', SLOTS));
/** Descriptors per hog: RLIMIT_NOFILE, so several processes are needed to reach the per-user count. */
const OPEN_FILES = 64;
/** fds 0-2, and room to spare. */
const FDS_NOT_FOR_INOTIFY = 8;
const HOLD_MS = 4000;
const POLL_MS = 20;
/** How long the hogs get to open everything before we look at the host. */
const FILL_TIMEOUT_MS = 3000;

/** fs.inotify.max_user_instances: what one user may hold in the host's namespace, and what the slot's uid gets. */
const maxInstances = Number(readFileSync('/proc/sys/fs/inotify/max_user_instances', 'utf8'));
const hogs = Math.ceil(maxInstances / (OPEN_FILES - FDS_NOT_FOR_INOTIFY)) + 1;

let rt: TestRuntime;
let probe: CompiledProbe;
before(async () => {
  rt = await startTestRuntime('runtime/kernel-counters', { slots: SLOTS });
  probe = await CompiledProbe.compile(rt, 'counters.c');
});
after(async () => {
  probe?.close();
  await rt?.close();
});

/** Calls inotify_init() in a fresh host process (fs.watch does), as root or as another uid; its error, or null. */
function hostInotifyInit(uid = 0): string | null {
  const r = spawnSync(process.execPath, ['-e', "require('fs').watch('/').close()"], { uid, gid: uid, cwd: '/', encoding: 'utf8', env: {} });
  if (r.status === 0) return null;
  return /\b(E[A-Z]+)\b/.exec(r.stderr)?.[1] ?? `exit ${r.status}: ${r.stderr}`;
}

const runHogs = () =>
  probe.run(`inotify ${hogs} ${HOLD_MS}\n`, { processes: hogs + 4, openFiles: OPEN_FILES, wallMs: HOLD_MS + 6000, memoryMb: 128 });

/** Waits until the sandbox's processes hold all the instances they will get (the count stops moving). */
async function whileHeld(): Promise<{ held: number; pids: number[] }> {
  const deadline = Date.now() + FILL_TIMEOUT_MS;
  let last = -1;
  let stableSince = Date.now();
  for (;;) {
    const pids = liveHostProcessesOwnedBy([SLOT.userHostId]).map((p) => p.pid);
    const held = inotifyInstancesHeldBy(pids);
    if (held !== last) [last, stableSince] = [held, Date.now()];
    if (held >= maxInstances || (held > 0 && Date.now() - stableSince > 10 * POLL_MS) || Date.now() > deadline) return { held, pids };
    await sleep(POLL_MS);
  }
}

function instancesOf(r: StepResult): number {
  const total = /^inotify instances: (\d+)$/m.exec(r.stdout);
  assert.ok(total, `the probe did not report its total:\n${explain(r)}`);
  return Number(total[1]);
}

test("a sandbox holding every inotify instance it can get leaves root on the host free to call inotify_init(): the count is the slot's", async () => {
  assert.equal(
    hostInotifyInit(),
    null,
    'root cannot call inotify_init() even before the sandbox starts: this host is already at its limit',
  );
  const pending = runHogs();
  let held: Awaited<ReturnType<typeof whileHeld>>;
  let rootInit: string | null;
  let slotInit: string | null;
  let owner: number | undefined;
  try {
    held = await whileHeld();
    rootInit = hostInotifyInit();
    // A host process as the slot's root id, for this one call: it owns the
    // sandbox's namespace, so nothing else ever runs as that id on the host.
    slotInit = hostInotifyInit(SLOT.rootHostId);
    owner = held.pids[0] === undefined ? undefined : userNamespaceOwner(held.pids[0]);
  } finally {
    await pending.catch(() => {});
  }
  const r = await pending;
  assert.equal(r.verdict, 'ok', explain(r));
  assert.match(r.stdout, /^done$/m, explain(r));
  assert.match(r.stdout, /then EMFILE/, `no hog stopped at the per-user count:\n${explain(r)}`);
  assert.equal(
    rootInit,
    null,
    `root on the host got ${rootInit} from inotify_init() while the sandbox held ${held.held} instances: they were charged to root`,
  );
  assert.equal(
    owner,
    SLOT.rootHostId,
    `the sandbox's user namespace belongs to uid ${owner}, not to the slot's root id ${SLOT.rootHostId}`,
  );
  assert.equal(
    slotInit,
    'EMFILE',
    "a process of the slot's root id could still call inotify_init(): the sandbox's instances were not charged to it",
  );
  assert.ok(
    held.held >= maxInstances,
    `the host saw the sandbox hold ${held.held} inotify instances, not the ${maxInstances} it can get:\n${explain(r)}`,
  );
  assert.equal(
    instancesOf(r),
    maxInstances,
    `the sandbox got other than max_user_instances=${maxInstances}: something else counts against its allowance:\n${explain(r)}`,
  );
});

test('the next sandbox on the same slot gets the whole allowance again: the counts died with the namespace', async () => {
  for (let run = 0; run < 2; run++) {
    const r = await runHogs();
    assert.equal(r.verdict, 'ok', explain(r));
    assert.equal(instancesOf(r), maxInstances, `run ${run + 1} on the same slot got fewer instances:\n${explain(r)}`);
    assert.match(r.stdout, /^inotify_init after release: ok$/m, `instances of killed processes were still counted:\n${explain(r)}`);
  }
  // The slot's next sandbox may be prepared already (warm slots): it holds no instance.
  // Listed first: a prepared sandbox's process in the list is in the later look at the launchers' trees too.
  const owned = hostProcessesOwnedBy([SLOT.rootHostId, SLOT.userHostId]);
  const prepared = preparedSandboxProcesses();
  assert.deepEqual(
    owned.filter((p) => p.state !== 'Z' && !prepared.has(p.pid) && isAlive(p.pid)),
    [],
  );
  assert.equal(hostInotifyInit(SLOT.rootHostId), null, "the slot's uid is still charged for instances after its sandboxes are gone");
});
