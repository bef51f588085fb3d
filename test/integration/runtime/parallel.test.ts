/**
 * Twenty sandboxes at once, each with its own token, must not see each
 * other's files; and once the runtime is closed, nothing of them is left in
 * the host: no cgroup, no mount, no process, no workspace.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import { startTestRuntime, type TestRuntime } from '../../helpers/runtime.ts';
import { cgroupDirsUnder, liveHostProcessesOwnedBy, mountsNaming, slotHostUids } from './host-state.ts';
import { explain, probeSource } from './probes.ts';

const SANDBOXES = 20;
const LIMITS = { cpuMs: 2000, wallMs: 15_000, memoryMb: 64, processes: 8, diskMb: 16 };
const SOURCE = probeSource('crosstalk.py');

let rt: TestRuntime;
before(async () => {
  rt = await startTestRuntime('runtime/parallel', { slots: SANDBOXES });
});
after(async () => {
  await rt?.close();
});

test(`${SANDBOXES} sandboxes in parallel each read back only their own token from /tmp and /box`, async () => {
  const tokens = Array.from({ length: SANDBOXES }, () => randomUUID());
  const startedAt = performance.now();
  const results = await Promise.all(tokens.map((token) => rt.run('python', SOURCE, { stdin: token, limits: LIMITS })));
  const elapsedMs = performance.now() - startedAt;
  results.forEach(({ run }, i) => {
    const token = tokens[i]!;
    assert.equal(run?.verdict, 'ok', `sandbox ${i} failed:\n${explain(run)}`);
    assert.equal(
      run!.stdout,
      `tmp: ${token}\nbox: ${token}\nls /tmp: token\nls /box: main.py token\n`,
      `sandbox ${i} saw something not its own:\n${explain(run)}`,
    );
  });
  // Each sandbox waits while holding its files; the batch only proves anything if those waits overlapped.
  const summedWallMs = results.reduce((sum, { run }) => sum + run!.wallMs, 0);
  assert.ok(
    elapsedMs < summedWallMs / 2,
    `the sandboxes ran one after another (${Math.round(elapsedMs)} ms for ${summedWallMs} ms of summed wall time)`,
  );
});

test('after close no slot cgroup, mount, process or workspace of the runtime is left in the host', async () => {
  const { cgroupParent } = rt.config;
  await rt.runtime.close(); // the runtime only: the helper's close() would also delete the state dir we inspect
  const leftCgroups = cgroupDirsUnder(cgroupParent);
  assert.deepEqual(
    leftCgroups.filter((dir) => !dir.endsWith(`/${cgroupParent}`)),
    [],
    'slot cgroups are left',
  );
  assert.deepEqual(mountsNaming(rt.stateDir), [], 'mounts under the state dir are left');
  assert.deepEqual(liveHostProcessesOwnedBy(slotHostUids(rt.config)), [], 'processes of the slot uids still run');
  const runs = join(rt.stateDir, 'runs');
  const leftWorkspaces = existsSync(runs)
    ? readdirSync(runs).flatMap((slot) => readdirSync(join(runs, slot)).map((id) => `${slot}/${id}`))
    : [];
  assert.deepEqual(leftWorkspaces, [], 'job workspaces are left under the state dir');
  assert.deepEqual(leftCgroups, [], `the runtime's own (empty) cgroup parent ${cgroupParent} is left in the host`);
});
