/**
 * A slot's cgroup is reused from run to run, and each run must still report
 * its own memory peak. memory.peak counts from the cgroup's creation until
 * kernel 6.12, which lets a write through an open fd restart it
 * (runtime/cgroups/v2/memory-peak.ts): before 6.12 Brig recreates a used
 * slot's cgroup before the next run, from 6.12 it resets the peak in place.
 * Here both paths run for real, each on the kernel that calls for it, and a
 * run after a bigger one shows only its own peak.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { peakModeOf } from '../../runtime/cgroups/v2/memory-peak.ts';
import type { StepResult } from '../../runtime/result.ts';
import type { SubmissionResult } from '../../runtime/submission.ts';
import { BYTES_PER_KB, BYTES_PER_MB } from '../../runtime/units.ts';
import { startTestRuntime, type TestRuntime } from '../helpers/runtime.ts';
import { explain } from '../integration/runtime/probes.ts';
import { kernelSeries, NOT_IN_VM, sampleStep, v2Of } from './vm.ts';

/** The first kernel series whose memory.peak takes a reset (a write through an fd). */
const PEAK_RESET_SERIES: [number, number] = [6, 12];
const KB_PER_MB = BYTES_PER_MB / BYTES_PER_KB;
/** What python itself holds, at most, besides what the program allocates. */
const PYTHON_MB = 40;

let rt: TestRuntime;
let slot: string;
before(async () => {
  if (NOT_IN_VM) return;
  rt = await startTestRuntime('../vm/slot-reuse', { slots: 1 });
  slot = join(v2Of(rt.runtime).placement().parent, 'slot-0');
});
after(async () => {
  await rt?.close();
});

/**
 * A python run that holds `mb` MiB of touched memory: its peak, and the inode
 * of the cgroup it ran in, read while it ran (with warm slots, the slot's
 * cgroup may already be the next sandbox's once the result is back).
 */
async function holding(mb: number): Promise<{ run: StepResult; inode: number }> {
  const source = mb > 0 ? `s = b'x' * (${mb} << 20)\nprint(len(s) >> 20)` : 'print(0)';
  let result!: SubmissionResult;
  const samples = await sampleStep(slot, [], async () => {
    result = await rt.run('python', source, { limits: { memoryMb: 256, cpuMs: 5000, wallMs: 20000 } });
  });
  assert.ok(result.run, 'no run step');
  assert.equal(result.run.verdict, 'ok', explain(result.run));
  const inodes = [...new Set(samples.running.map((sample) => sample.inode))];
  assert.equal(inodes.length, 1, `the run was seen in ${inodes.length} cgroups (inodes ${inodes.join(', ')}), not one`);
  return { run: result.run, inode: inodes[0]! };
}

const newer = (a: [number, number], b: [number, number]) => a[0] > b[0] || (a[0] === b[0] && a[1] >= b[1]);

test("the slot's memory.peak works as its kernel's series says: a reset per fd from 6.12, from creation before", {
  skip: NOT_IN_VM,
}, async () => {
  await holding(0);
  const expected = newer(kernelSeries(), PEAK_RESET_SERIES) ? 'per-fd' : 'since-creation';
  assert.equal(peakModeOf(join(slot, 'memory.peak')), expected, `kernel ${kernelSeries().join('.')}`);
});

test('a reused slot reports each run its own peak: 96 MiB, then python alone, then 48 MiB', { skip: NOT_IN_VM }, async () => {
  const big = await holding(96);
  const small = await holding(0);
  const middle = await holding(48);
  assert.ok(big.run.memoryKb >= 96 * KB_PER_MB, `the 96 MiB run peaked at ${big.run.memoryKb} KiB:\n${explain(big.run)}`);
  assert.ok(small.run.memoryKb < PYTHON_MB * KB_PER_MB, `the run after it reported ${small.run.memoryKb} KiB: the earlier peak leaked in`);
  assert.ok(
    middle.run.memoryKb >= 48 * KB_PER_MB && middle.run.memoryKb < (48 + PYTHON_MB) * KB_PER_MB,
    `the 48 MiB run reported ${middle.run.memoryKb} KiB, not its own peak`,
  );
  if (peakModeOf(join(slot, 'memory.peak')) === 'per-fd') {
    assert.equal(small.inode, big.inode, 'the slot was recreated although its kernel resets memory.peak');
    assert.equal(middle.inode, big.inode, 'the slot was recreated although its kernel resets memory.peak');
  } else {
    // The fallback: a fresh cgroup for every run that follows a counted one, made as its sandbox is prepared.
    assert.notEqual(small.inode, big.inode, 'the slot was reused as it was: its memory.peak still held the earlier run');
    assert.notEqual(middle.inode, small.inode, 'the slot was reused as it was: its memory.peak still held the earlier run');
  }
});
