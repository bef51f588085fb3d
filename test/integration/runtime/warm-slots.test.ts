/**
 * Warm slots: after a step, the slot prepares its next sandbox up to the
 * go-ahead, so the next request pays only for its own part. What must hold:
 * the next step takes that sandbox; a sandbox runs one program and is never
 * reused (nothing of one run reaches the next); a prepared sandbox that died
 * or grew too old is replaced; with warm slots off nothing waits between
 * steps; and close() leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RuntimeConfig } from '../../../runtime/config.ts';
import { Submission } from '../../../runtime/submission.ts';
import { startTestRuntime, type TestRuntime } from '../../helpers/runtime.ts';
import { cgroupDirsUnder, isAlive, sandboxLeftovers, waitingInits } from './host-state.ts';

const PREPARE_TIMEOUT_MS = 5000;
const POLL_MS = 5;
const MAX_AGE_MS = 300;

async function withRuntime(overrides: Partial<RuntimeConfig>, body: (rt: TestRuntime) => Promise<void>): Promise<void> {
  const rt = await startTestRuntime('runtime/warm-slots', { slots: 1, ...overrides });
  try {
    await body(rt);
  } finally {
    await rt.close();
  }
}

/** The init of the slot's prepared sandbox, once it is ready. */
async function waitingInit(rt: TestRuntime): Promise<number> {
  const deadline = Date.now() + PREPARE_TIMEOUT_MS;
  for (;;) {
    const [init, ...more] = waitingInits();
    assert.deepEqual(more, [], 'one slot prepared more than one sandbox');
    if (init !== undefined && rt.runtime.preparedSandboxes === 1) return init;
    if (Date.now() > deadline) throw new Error(`no prepared sandbox after ${PREPARE_TIMEOUT_MS} ms`);
    await sleep(POLL_MS);
  }
}

interface BashRun {
  stdout: string;
  warm: boolean | undefined;
  submitToExecNs: bigint | null | undefined;
}

async function bash(rt: TestRuntime, script: string): Promise<BashRun> {
  let warm: boolean | undefined;
  let submitToExecNs: bigint | null | undefined;
  const job = await Submission.open(rt.runtime, {
    language: 'bash',
    files: [{ name: 'main.sh', content: Buffer.from(script) }],
    onStepTimings: (t) => {
      warm = t.warm;
      submitToExecNs = t.submitToExecNs;
    },
  });
  try {
    const r = await job.run(Buffer.alloc(0));
    assert.equal(r.verdict, 'ok', `${r.verdict}: ${r.stderr}`);
    return { stdout: r.stdout, warm, submitToExecNs };
  } finally {
    job.close();
  }
}

const MARK_AND_REPORT = `
for f in /tmp/mark /box/mark /dev/shm/mark; do [ -e "$f" ] && echo "found $f"; done
echo one > /tmp/mark; echo one > /box/mark; echo one > /dev/shm/mark
echo "hostname $(hostname)"
`;

test('the next step takes the sandbox the slot prepared, and says so with its submit-to-exec time', async () => {
  await withRuntime({ warmSlots: true }, async (rt) => {
    const prepared = await waitingInit(rt);
    const r = await bash(rt, 'echo hi\n');
    assert.equal(r.stdout, 'hi\n');
    assert.equal(r.warm, true, 'the step built its own sandbox although one was prepared');
    assert.ok(typeof r.submitToExecNs === 'bigint' && r.submitToExecNs > 0n, `submit to exec: ${r.submitToExecNs}`);
    assert.equal(isAlive(prepared), false, 'the sandbox that ran the step is still there');
  });
});

test('a prepared sandbox runs one step and is never reused: nothing of one run reaches the next', async () => {
  await withRuntime({ warmSlots: true }, async (rt) => {
    const inits: number[] = [];
    for (let i = 0; i < 3; i++) {
      inits.push(await waitingInit(rt));
      const r = await bash(rt, MARK_AND_REPORT);
      assert.doesNotMatch(r.stdout, /found/, `run ${i} saw files an earlier run wrote:\n${r.stdout}`);
      assert.equal(r.warm, true);
    }
    assert.equal(new Set(inits).size, inits.length, `a sandbox ran two steps: inits ${inits.join(', ')}`);
    for (const init of inits) assert.equal(isAlive(init), false, `the sandbox of init ${init} outlived its step`);
  });
});

/** The parent pid of `pid`, from /proc/<pid>/stat (the field after the state). */
function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

test("the launcher holds its sandbox's mount namespace, so ending it (an RCU wait) is not the step's: settled() waits for the launcher", async () => {
  await withRuntime({ warmSlots: true }, async (rt) => {
    const init = await waitingInit(rt);
    const launcher = parentOf(init);
    const namespace = readlinkSync(`/proc/${init}/ns/mnt`);
    assert.notEqual(namespace, readlinkSync('/proc/self/ns/mnt'), 'the sandbox shares the host mount namespace');
    const held = readdirSync(`/proc/${launcher}/fd`).map((fd) => readlinkSync(`/proc/${launcher}/fd/${fd}`));
    assert.ok(held.includes(namespace), `launcher ${launcher} holds ${held.join(', ')}, not ${namespace}`);
    const r = await bash(rt, 'echo hi\n');
    assert.equal(r.stdout, 'hi\n');
    await rt.runtime.settled();
    assert.equal(isAlive(launcher), false, "the step's launcher outlived settled()");
  });
});

/** A /proc/<pid>/status field, e.g. "Seccomp". */
function statusField(pid: number, name: string): string {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  assert.ok(line, `/proc/${pid}/status has no ${name}`);
  return line.slice(name.length + 1).trim();
}

/** The task's EEVDF slice, or null where /proc does not show one. */
function sliceNs(pid: number): number | null {
  const line = readFileSync(`/proc/${pid}/sched`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('se.slice '));
  return line === undefined ? null : Number(line.split(':')[1]);
}

test("a prepared sandbox's program process waits already confined (inner ids, no capabilities, its filter loaded) and becomes the program; only init has the short slice", async () => {
  await withRuntime({ warmSlots: true }, async (rt) => {
    const init = await waitingInit(rt);
    const children = readFileSync(`/proc/${init}/task/${init}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number);
    assert.equal(children.length, 1, `init ${init} has children ${children.join(', ')}`);
    const program = children[0]!;
    assert.equal(statusField(program, 'Seccomp'), '2', 'the parked process has no seccomp filter');
    assert.equal(statusField(program, 'NoNewPrivs'), '1');
    for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) assert.equal(BigInt(`0x${statusField(program, set)}`), 0n, set);
    const [, realUid] = statusField(program, 'Uid').split(/\s+/).map(Number);
    const [, initUid] = statusField(init, 'Uid').split(/\s+/).map(Number);
    assert.notEqual(realUid, initUid, "the parked process still has init's (inner root's) uid");
    // Init asked for the shortest slice, so the go-ahead wakes it at once;
    // the program keeps the default. /proc/PID/sched shows se.slice on
    // kernels with custom slices (6.12 and later).
    const initSlice = sliceNs(init);
    if (initSlice !== null) {
      assert.equal(initSlice, 100_000);
      assert.ok(sliceNs(program)! > initSlice, `the program has init's slice (${sliceNs(program)} ns)`);
    }
    // Its pid inside is the program's: the same process executes it.
    const innerPid = statusField(program, 'NSpid').split(/\s+/).at(-1);
    const r = await bash(rt, 'echo "pid $$ uid $(id -u)"\n');
    assert.equal(r.warm, true);
    assert.equal(r.stdout, `pid ${innerPid} uid 1000\n`);
  });
});

test('a prepared sandbox killed while it waits is replaced: the next step still runs', async () => {
  await withRuntime({ warmSlots: true }, async (rt) => {
    const prepared = await waitingInit(rt);
    process.kill(prepared, 'SIGKILL');
    const r = await bash(rt, 'echo after the kill\n');
    assert.equal(r.stdout, 'after the kill\n');
    assert.equal(r.warm, false, 'a dead prepared sandbox cannot have run the step');
    assert.deepEqual(sandboxLeftovers(rt.config), []);
  });
});

test('a prepared sandbox whose parked program process was killed is replaced: the next step still runs, and nothing is left', async () => {
  await withRuntime({ warmSlots: true }, async (rt) => {
    const init = await waitingInit(rt);
    const [program] = readFileSync(`/proc/${init}/task/${init}/children`, 'utf8').trim().split(' ').map(Number);
    assert.ok(program, `init ${init} has no parked program process`);
    process.kill(program, 'SIGKILL');
    const r = await bash(rt, 'echo after the kill\n');
    assert.equal(r.stdout, 'after the kill\n');
    assert.equal(r.warm, false, 'a sandbox without its program process cannot have run the step');
    await rt.runtime.settled();
    assert.deepEqual(sandboxLeftovers(rt.config), []);
  });
});

test("a run after one that filled its memory limit with files gets the whole limit: the slot's next sandbox waits for the last one's mounts to go", async () => {
  await withRuntime({ warmSlots: true }, async (rt) => {
    const limits = { memoryMb: 64, cpuMs: 5000, wallMs: 10_000 };
    // Empty files in /tmp: their inodes and dentries are charged to the slot's
    // cgroup until the sandbox's tmpfs goes, with its mount namespace.
    const files =
      'import os\ni = 0\ntry:\n    while True:\n        open(f"/tmp/f{i}", "w").close()\n        i += 1\nexcept OSError as e:\n    print(i, e)\n';
    const filled = await rt.run('python', files, { limits });
    assert.ok(
      filled.run?.verdict === 'memory_limit' || /No space|Cannot allocate/.test(filled.run?.stdout ?? ''),
      JSON.stringify(filled.run),
    );
    const bomb = 'blocks = []\nwhile True:\n    blocks.append(b"x" * (1 << 20))\n';
    const next = await rt.run('python', bomb, { limits });
    assert.equal(next.run?.verdict, 'memory_limit', JSON.stringify(next.run));
    // Before, the next run started with the last one's files still charged and was killed a few MiB in.
    assert.ok(next.run.memoryKb >= 56 * 1024, `the run after got ${next.run.memoryKb} KiB of a 64 MiB limit`);
  });
});

test("a submission after one whose compile filled its workspace gets the whole memory limit: the slot's next step waits for the last workspace to go", async () => {
  await withRuntime({ warmSlots: true }, async (rt) => {
    // gcc writes the array into the binary, in the workspace: its pages are
    // charged to the slot's cgroup until the workspace is unmounted, after
    // the submission closes.
    const big = 'char big[15 << 20] = {1};\nint main(void) { return big[0] - 1; }\n';
    const filled = await Submission.open(rt.runtime, { language: 'c', files: [{ name: 'main.c', content: Buffer.from(big) }] });
    try {
      const compile = await filled.compile();
      assert.equal(compile?.verdict, 'ok', JSON.stringify(compile));
      // The slot's next sandbox is ready before the workspace goes: its preparation holds nothing back.
      await waitingInit(rt);
    } finally {
      filled.close();
    }
    const bomb = 'blocks = []\nwhile True:\n    blocks.append(b"x" * (1 << 20))\n';
    const next = await rt.run('python', bomb, { limits: { memoryMb: 64, cpuMs: 5000, wallMs: 10_000 } });
    assert.equal(next.run?.verdict, 'memory_limit', JSON.stringify(next.run));
    // Started while the workspace was still there, its peak was counted above the workspace's 15 MiB.
    assert.ok(next.run.memoryKb >= 56 * 1024, `the run after got ${next.run.memoryKb} KiB of a 64 MiB limit`);
  });
});

test('a prepared sandbox left unused for its maximum age is discarded and prepared anew', async () => {
  await withRuntime({ warmSlots: true, preparedMaxAgeMs: MAX_AGE_MS }, async (rt) => {
    const first = await waitingInit(rt);
    await sleep(MAX_AGE_MS * 2);
    const second = await waitingInit(rt);
    assert.notEqual(second, first, `the same sandbox waited for more than ${MAX_AGE_MS} ms`);
    assert.equal(isAlive(first), false, 'the expired sandbox is still alive');
    const r = await bash(rt, 'echo fresh\n');
    assert.equal(r.stdout, 'fresh\n');
    assert.equal(r.warm, true);
  });
});

test('with warm slots off, no sandbox waits between steps and each step builds its own', async () => {
  await withRuntime({ warmSlots: false }, async (rt) => {
    for (let i = 0; i < 2; i++) {
      const r = await bash(rt, 'echo cold\n');
      assert.equal(r.warm, false);
      assert.deepEqual([...waitingInits()], [], 'a sandbox was prepared with warm slots off');
    }
  });
});

test('close() discards the prepared sandbox: no process, cgroup or mount is left', async () => {
  const rt = await startTestRuntime('runtime/warm-slots', { slots: 1, warmSlots: true });
  let prepared: number;
  try {
    await bash(rt, 'echo once\n');
    prepared = await waitingInit(rt);
  } finally {
    await rt.runtime.close();
  }
  try {
    assert.equal(isAlive(prepared), false, 'the prepared sandbox outlived close()');
    assert.deepEqual(sandboxLeftovers(rt.config), []);
    assert.deepEqual(cgroupDirsUnder(rt.config.cgroupParent), [], 'cgroups are left after close()');
  } finally {
    await rt.close();
  }
});
