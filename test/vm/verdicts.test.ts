/**
 * Each limit's verdict on cgroup v2, checked against the kernel's own files:
 * memory_limit against memory.events' oom_kill, the processes limit against
 * pids.max and pids.events' max, time_limit over forked processes against
 * cpu.stat's usage_usec. limits.test.ts (run in the VM too) covers the same
 * verdicts from the program's side.
 *
 * With warm slots the slot's next sandbox is prepared as soon as a step ends,
 * and before kernel 6.12 that recreates the slot's cgroup: the limits and the
 * per-slot counters are read while the program runs (vm.ts sampleStep), and
 * the hierarchical counters from Brig's parent, which keeps a removed
 * child's counts (vm.ts parentGrowth).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Limits } from '../../runtime/limits.ts';
import type { StepResult } from '../../runtime/result.ts';
import { BYTES_PER_KB, BYTES_PER_MB, usToMs } from '../../runtime/units.ts';
import { startTestRuntime, type TestRuntime } from '../helpers/runtime.ts';
import { explain } from '../integration/runtime/probes.ts';
import { NOT_IN_VM, parentGrowth, sampleStep, stepGrowth, v2Of, valuesWhileRunning } from './vm.ts';

const US_PER_MS = 1000;

let rt: TestRuntime;
let parent: string;
let slot: string;
before(async () => {
  if (NOT_IN_VM) return;
  rt = await startTestRuntime('../vm/verdicts', { slots: 1 });
  parent = v2Of(rt.runtime).placement().parent;
  slot = join(parent, 'slot-0');
});
after(async () => {
  await rt?.close();
});

async function python(source: string, limits: Partial<Limits>): Promise<StepResult> {
  const result = await rt.run('python', source, { limits });
  assert.ok(result.run, 'the python run has no run step');
  return result.run;
}

test('200 MB touched under a 64 MB limit is memory_limit, and the kernel counted the OOM kill in memory.events', {
  skip: NOT_IN_VM,
}, async () => {
  const memoryMb = 64;
  let r!: StepResult;
  let samples!: Awaited<ReturnType<typeof sampleStep>>;
  const oomKills = await parentGrowth(parent, 'memory.events', 'oom_kill', async () => {
    samples = await sampleStep(slot, ['memory.max', 'memory.swap.max'], async () => {
      // CPU to spare: under TCG the kernel's reclaim before the OOM kill took
      // over 5 s of CPU once (the run ended time_limit at 5067 ms, on a day the
      // host ran three times slower than usual).
      r = await python("s = 'x' * (200 << 20)\nprint('survived')", { memoryMb, cpuMs: 20000, wallMs: 60000 });
    });
  });
  assert.equal(r.verdict, 'memory_limit', explain(r));
  assert.doesNotMatch(r.stdout, /survived/, explain(r));
  assert.ok(oomKills >= 1, `memory.events of ${parent} counted ${oomKills} oom_kill in its slot during the run:\n${explain(r)}`);
  assert.ok(r.memoryKb <= (memoryMb * BYTES_PER_MB) / BYTES_PER_KB, `peak memory over the limit:\n${explain(r)}`);
  assert.deepEqual(valuesWhileRunning(samples, 'memory.max'), [String(memoryMb * BYTES_PER_MB)]);
  assert.deepEqual(valuesWhileRunning(samples, 'memory.swap.max'), ['0'], 'a sandbox could swap past its limit');
});

test('forking past the processes limit fails with EAGAIN at pids.max, and pids.events counts the refusals', {
  skip: NOT_IN_VM,
}, async () => {
  const processes = 8;
  const source = [
    'import errno, os, time',
    'forks = 0',
    'try:',
    '    while True:',
    '        if os.fork() == 0:',
    '            time.sleep(60)',
    '            os._exit(0)',
    '        forks += 1',
    'except OSError as error:',
    "    print('forks', forks, errno.errorcode[error.errno], flush=True)",
    // Held a moment with every process up, so that the refusals are read from the cgroup it ran in.
    'time.sleep(1)',
  ].join('\n');
  let r!: StepResult;
  const samples = await sampleStep(slot, ['pids.max', 'pids.events'], async () => {
    r = await python(source, { processes, cpuMs: 5000, wallMs: 20000 });
  });
  // pids.max counts the sandbox's init too; the program itself is one of the processes.
  assert.deepEqual(valuesWhileRunning(samples, 'pids.max'), [String(processes + 1)]);
  const forks = /forks (\d+) (\w+)/.exec(r.stdout);
  assert.ok(forks, `the program did not report its forks:\n${explain(r)}`);
  assert.equal(forks[2], 'EAGAIN', explain(r));
  assert.equal(Number(forks[1]), processes - 1, `forks before the refusal under processes=${processes}:\n${explain(r)}`);
  const refused = stepGrowth(samples, 'pids.events', 'max');
  assert.ok(refused >= 1, `pids.events of ${slot} counted ${refused} refused forks during the run`);
});

test('a CPU burn in 4 forked processes is time_limit on their summed CPU time, as cpu.stat counts it', { skip: NOT_IN_VM }, async () => {
  const cpuMs = 1000;
  const source = ['import os', 'for _ in range(3):', '    if os.fork() == 0:', '        break', 'while True:', '    pass'].join('\n');
  let r!: StepResult;
  const usageUs = await parentGrowth(parent, 'cpu.stat', 'usage_usec', async () => {
    r = await python(source, { cpuMs, wallMs: 20 * cpuMs, processes: 8 });
  });
  assert.equal(r.verdict, 'time_limit', explain(r));
  assert.ok(r.cpuMs >= cpuMs, `cpuMs below the limit it was killed for:\n${explain(r)}`);
  assert.ok(r.cpuMs < 1.5 * cpuMs, `the burners used far more CPU than the limit:\n${explain(r)}`);
  // Brig rounds to the ms (runtime/units.ts): so does the comparison, and the parent counts at least its slot.
  assert.ok(usToMs(usageUs) >= r.cpuMs, `cpu.stat of ${parent} counted ${usageUs / US_PER_MS} ms, less than the ${r.cpuMs} ms reported`);
});
