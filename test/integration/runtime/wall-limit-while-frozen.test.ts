/**
 * The wall limit does not depend on the runtime's event loop: the sandbox's
 * init keeps it on the kernel's clock (launcher.c, --wall-ms). Here the test
 * process, which is also the runtime, freezes its own event loop on purpose
 * while a program sleeps far past its limit.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Limits } from '../../../runtime/limits.ts';
import { Submission } from '../../../runtime/submission.ts';
import { startTestRuntime, type TestRuntime } from '../../helpers/runtime.ts';
import { liveHostProcessesOwnedBy, sandboxLeftovers, slotHostUids } from './host-state.ts';
import { explain } from './probes.ts';

const WALL_LIMIT_MS = 500;
/** Several times the limit: with only Node's timer, the program would live at least this long. */
const FREEZE_MS = 3000;
/** What the kernel's timer, the kill and the reaping may add on top of the limit. */
const KILL_SLACK_MS = 300;
const POLL_MS = 10;
const PROGRAM_START_TIMEOUT_MS = 5000;
const SIGKILL = 9;
const LIMITS: Partial<Limits> = { wallMs: WALL_LIMIT_MS, cpuMs: 1000, memoryMb: 64 };

let rt: TestRuntime;
before(async () => {
  rt = await startTestRuntime('runtime/wall-limit-while-frozen', { slots: 1 });
});
after(async () => {
  await rt?.close();
});

async function openBash(script: string): Promise<Submission> {
  return Submission.open(rt.runtime, { language: 'bash', files: [{ name: 'main.sh', content: Buffer.from(script) }], limits: LIMITS });
}

/** Waits until a process named `name` runs as one of the slot's host uids: the program is past its execve. */
async function waitForProgram(name: string): Promise<void> {
  const deadline = performance.now() + PROGRAM_START_TIMEOUT_MS;
  while (!liveHostProcessesOwnedBy(slotHostUids(rt.config)).some((p) => p.name === name)) {
    if (performance.now() > deadline) throw new Error(`no sandboxed ${name} after ${PROGRAM_START_TIMEOUT_MS} ms`);
    await sleep(POLL_MS);
  }
}

/** Holds this thread, and so the event loop with every timer of the runtime, for `ms`. */
function freezeEventLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy on purpose
  }
}

test("a program sleeping past its wall limit dies at the limit while the runtime's event loop is frozen", async () => {
  const job = await openBash('exec sleep 30\n');
  try {
    const pending = job.run(Buffer.alloc(0));
    await waitForProgram('sleep');
    freezeEventLoop(FREEZE_MS);
    // Looked at before the event loop runs again, so before Node's own wall timer could fire.
    const survivors = sandboxLeftovers(rt.config);
    const r = await pending;
    assert.deepEqual(
      survivors,
      [],
      `the sandbox outlived its ${WALL_LIMIT_MS} ms wall limit while the event loop was frozen for ${FREEZE_MS} ms`,
    );
    assert.equal(r.verdict, 'time_limit', explain(r));
    assert.equal(r.signal, SIGKILL, explain(r));
    assert.ok(
      r.wallMs >= WALL_LIMIT_MS && r.wallMs < WALL_LIMIT_MS + KILL_SLACK_MS,
      `init measured ${r.wallMs} ms, not the wall limit:\n${explain(r)}`,
    );
  } finally {
    job.close();
  }
});

test("a program that ends before its wall limit is untouched by init's timer", async () => {
  const job = await openBash('echo done\n');
  try {
    const r = await job.run(Buffer.alloc(0));
    assert.equal(r.verdict, 'ok', explain(r));
    assert.equal(r.exitCode, 0, explain(r));
    assert.equal(r.stdout, 'done\n', explain(r));
    assert.ok(r.wallMs < WALL_LIMIT_MS, explain(r));
  } finally {
    job.close();
  }
});
