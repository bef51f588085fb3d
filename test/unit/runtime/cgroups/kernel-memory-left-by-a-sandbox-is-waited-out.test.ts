/**
 * A slot's next sandbox is prepared once the kernel memory its last one left
 * (a tmpfs full of inodes, freed over RCU grace periods) is given back, so
 * the next program gets its whole memory limit; the wait is bounded, and its
 * end is the next floor.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { KERNEL_MEMORY_SLACK_BYTES, KernelMemoryFloor } from '../../../../runtime/cgroups/kernel-memory.ts';

const MIB = 1024 * 1024;

/** A reader that returns the values in turn and then stays at the last one, counting its calls. */
function readings(...values: (number | null)[]) {
  let calls = 0;
  return {
    read: () => values[Math.min(calls++, values.length - 1)] ?? null,
    get calls() {
      return calls;
    },
  };
}

test('the first settle only takes the floor', async () => {
  const r = readings(50 * MIB);
  const floor = new KernelMemoryFloor(r.read);
  await floor.settle();
  assert.equal(r.calls, 1);
});

test('kernel memory at the floor, or within the slack above it, is not waited on', async () => {
  const r = readings(2 * MIB, 2 * MIB + KERNEL_MEMORY_SLACK_BYTES);
  const floor = new KernelMemoryFloor(r.read);
  await floor.settle();
  await floor.settle();
  assert.equal(r.calls, 2);
});

test('kernel memory above the floor is waited on until it falls back near it', async () => {
  const r = readings(MIB, 40 * MIB, 30 * MIB, 10 * MIB, MIB + MIB / 2);
  const floor = new KernelMemoryFloor(r.read);
  await floor.settle();
  await floor.settle();
  assert.equal(r.calls, 5, 'read until within the slack');
});

test('the wait is bounded, and where it ends is the next floor', async () => {
  const r = readings(MIB, 40 * MIB);
  const floor = new KernelMemoryFloor(r.read, 20);
  await floor.settle();
  const start = performance.now();
  await floor.settle();
  const waited = performance.now() - start;
  assert.ok(waited >= 19 && waited < 1000, `waited ${waited} ms`);
  const callsAfterWait = r.calls;
  await floor.settle();
  assert.equal(r.calls, callsAfterWait + 1, '40 MiB is now the floor: no wait');
});

test('a kernel that does not count kernel memory apart is never waited on', async () => {
  const r = readings(null);
  const floor = new KernelMemoryFloor(r.read);
  await floor.settle();
  await floor.settle();
  assert.equal(r.calls, 2);
});
