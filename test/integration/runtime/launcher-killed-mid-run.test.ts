/**
 * A launcher killed from outside while its program runs fails the step with
 * an error that says so: the program had started, it ran this long, and the
 * launcher ended by this signal. Not "before the program ran".
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SandboxError } from '../../../runtime/errors.ts';
import { Submission } from '../../../runtime/submission.ts';
import { startTestRuntime, type TestRuntime } from '../../helpers/runtime.ts';
import { launcherRunningAProgram, liveHostProcessesOwnedBy, slotHostUids } from './host-state.ts';

/** How long the program runs before its launcher is killed. */
const RUN_BEFORE_KILL_MS = 400;
const POLL_MS = 10;
const PROGRAM_START_TIMEOUT_MS = 5000;

let rt: TestRuntime;
before(async () => {
  rt = await startTestRuntime('runtime/launcher-killed-mid-run', { slots: 1 });
});
after(async () => {
  await rt?.close();
});

/** The brig-launcher this process started, once its program is past execve. */
async function waitForRunningLauncher(program: string): Promise<number> {
  const deadline = performance.now() + PROGRAM_START_TIMEOUT_MS;
  for (;;) {
    const launcher = launcherRunningAProgram();
    if (launcher !== undefined && liveHostProcessesOwnedBy(slotHostUids(rt.config)).some((p) => p.name === program)) return launcher;
    if (performance.now() > deadline) throw new Error(`no brig-launcher child running ${program} after ${PROGRAM_START_TIMEOUT_MS} ms`);
    await sleep(POLL_MS);
  }
}

test('a launcher killed with SIGKILL mid-run fails the step with how long the program had run and the signal', async () => {
  const job = await Submission.open(rt.runtime, {
    language: 'bash',
    files: [{ name: 'main.sh', content: Buffer.from('exec sleep 30\n') }],
    limits: { wallMs: 10_000 },
  });
  try {
    const outcome = job.run(Buffer.alloc(0)).then(
      (r) => ({ r }),
      (error: Error) => ({ error }),
    );
    const launcher = await waitForRunningLauncher('sleep');
    await sleep(RUN_BEFORE_KILL_MS);
    process.kill(launcher, 'SIGKILL');
    const settled = await outcome;
    assert.ok('error' in settled, `a killed launcher must fail the step: ${JSON.stringify(settled)}`);
    const { error } = settled;
    assert.ok(error instanceof SandboxError, String(error));
    assert.doesNotMatch(error.message, /before the program/, error.message);
    const ran = /after the program had run for (\d+) ms/.exec(error.message);
    assert.ok(ran, `the message does not say how long the program ran: ${error.message}`);
    assert.ok(
      Number(ran[1]) >= RUN_BEFORE_KILL_MS,
      `the program ran at least ${RUN_BEFORE_KILL_MS} ms, the message says ${ran[1]}: ${error.message}`,
    );
    assert.match(error.message, /signal 9/, error.message);
  } finally {
    job.close();
  }
});
