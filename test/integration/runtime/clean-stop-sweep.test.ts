/**
 * The periodic sweep reports slots left behind by a dead Brig process (a
 * worker logs that as a warning). A runtime that stopped cleanly on the same
 * machine leaves nothing for it to report; crash-sweep.test.ts covers the
 * crash that must still be reported.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Runtime } from '../../../runtime/runtime.ts';
import { startTestRuntime, type TestRuntime } from '../../helpers/runtime.ts';
import { cgroupDirsUnder } from './host-state.ts';

let first: TestRuntime;
let second: Runtime | undefined;
before(async () => {
  first = await startTestRuntime('runtime/clean-stop-sweep', { slots: 1 });
});
after(async () => {
  await second?.close();
  await first?.close();
});

const runsDir = (slot: string) => join(first.stateDir, 'runs', slot);
const slotCgroups = (slot: string) => cgroupDirsUnder(first.config.cgroupParent).filter((dir) => dir.endsWith(`/${slot}`));

test('after a runtime closes cleanly, a second one on the same state dir and cgroup parent sweeps nothing', async () => {
  // The first runtime holds slot-0 and uses it, so it has a cgroup and a runs folder to clean up.
  assert.equal((await first.run('bash', 'echo used')).run?.stdout, 'used\n');
  second = await Runtime.create({ ...first.config, slots: 1 });
  assert.ok(existsSync(runsDir('slot-0')), 'the first runtime should have a runs folder for its slot (else this test proves nothing)');
  assert.notDeepEqual(slotCgroups('slot-0'), [], 'the first runtime should have a cgroup for its slot (else this test proves nothing)');

  await first.runtime.close();
  assert.equal(existsSync(runsDir('slot-0')), false, "a clean close left the slot's runs folder");
  assert.deepEqual(slotCgroups('slot-0'), [], "a clean close left the slot's cgroup");
  assert.deepEqual(await second.sweepFreeSlots(), []);
});

test("an empty runs folder of a free slot is removed without being reported as a dead worker's", async () => {
  assert.ok(second, 'the first test starts the second runtime');
  // What a clean stop of an earlier Brig version left behind: the folder, nothing in it, no cgroup.
  mkdirSync(runsDir('slot-5'), { mode: 0o711 });
  assert.deepEqual(await second.sweepFreeSlots(), []);
  assert.equal(existsSync(runsDir('slot-5')), false, 'the empty runs folder was not tidied');
  assert.deepEqual(readdirSync(join(first.stateDir, 'runs')), ['slot-1'], "only the live runtime's slot should be left");
});
