/**
 * npm run bench:sandbox — the per-run cost of a Brig sandbox against its floor.
 *
 * Two programs (/bin/true and a python hello world), each started these ways,
 * all through the same posix_spawn path (runtime/system/spawn.ts) so that no
 * way pays for a fork of Node that another does not:
 *   bare       the program itself
 *   unshare    `unshare --user --map-root-user --net --pid --mount --ipc --uts --fork` + the program
 *   brig       a full Brig run with warm slots (the default): workspace, the
 *              go-ahead to a sandbox prepared ahead, limits, accounting, teardown
 *   brig-cold  the same with BRIG_WARM_SLOTS=0: every sandbox built on the request's path
 * and, with BENCH_BASELINE_LAUNCHER=<path>, brig-baseline: brig again (warm)
 * with that launcher binary (an earlier build, say) to measure a launcher
 * change alone.
 *
 * The ways take turns run by run (one round = each way once, in an order
 * that rotates), in two scenarios:
 *   back-to-back  no pause between runs
 *   idle          50 ms of nothing before each run, as on a lightly loaded
 *                 server; on cgroup v1 a cgroup migration after ~20 ms without
 *                 one waits for an RCU grace period (~11 ms)
 * Prints p50/p95 per program, scenario and way; Brig's "submit to exec" (from
 * the step call to the program's execve, on the monotonic clock, as init saw
 * it); runs per second at concurrency = cores; and last the largest
 * brig/unshare p50 ratio over both programs and both scenarios:
 *   brig/unshare p50 ratio: X.XX
 * Environment: BENCH_RUNS (rounds per scenario, default 200), BENCH_WARMUP
 * (default 20), BENCH_IDLE_MS (default 50), BENCH_THROUGHPUT_RUNS (default 400).
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RuntimeConfig } from '../runtime/config.ts';
import { Runtime } from '../runtime/runtime.ts';
import { IDS_PER_SLOT } from '../runtime/slots/lease.ts';
import { Submission } from '../runtime/submission.ts';
import { spawnProcess } from '../runtime/system/spawn.ts';
import { loadRuntimeConfig } from '../services/shared/config.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 200);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 20);
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 50);
const THROUGHPUT_RUNS = Number(process.env.BENCH_THROUGHPUT_RUNS ?? 400);
const BASELINE_LAUNCHER = process.env.BENCH_BASELINE_LAUNCHER;
const CORES = availableParallelism();
const UNSHARE = ['/usr/bin/unshare', '--user', '--map-root-user', '--net', '--pid', '--mount', '--ipc', '--uts', '--fork'];
const PYTHON = '/usr/bin/python3';
const HELLO = 'print("hello world")\n';
const NS_PER_MS = 1e6;

interface Way {
  name: string;
  /** One run; resolves with submit-to-exec in ns for Brig's ways. */
  run: () => Promise<number | null>;
}

interface Program {
  name: string;
  ways: Way[];
}

/** Spawns argv by posix_spawn with stdio on pipes, reads its output to the end and reaps it. */
async function spawnAndWait(argv: string[]): Promise<null> {
  const child = await spawnProcess(argv[0]!, argv, ['in', 'out', 'out']);
  const [stdin, stdout, stderr] = [0, 1, 2].map((fd) => child.streams.get(fd)!);
  stdin!.end();
  const closed = [stdout!, stderr!].map((s) => new Promise((resolve) => s.resume().once('close', resolve)));
  await Promise.all(closed);
  const how = await child.reap();
  if (how.code !== 0) throw new Error(`${argv.join(' ')} ended with ${JSON.stringify(how)}`);
  return null;
}

function brigWay(name: string, runtime: Runtime, argv: string[] | null): Way {
  return {
    name,
    run: async () => {
      let submitToExecNs: number | null = null;
      const job = await Submission.open(runtime, {
        language: 'python',
        files: [{ name: 'main.py', content: Buffer.from(HELLO) }],
        onStepTimings: (t) => {
          submitToExecNs = t.submitToExecNs === null ? null : Number(t.submitToExecNs);
        },
      });
      try {
        const r = argv ? await job.runCommand(argv, Buffer.alloc(0), { last: true }) : await job.run(Buffer.alloc(0), { last: true });
        if (r.verdict !== 'ok' || (!argv && r.stdout !== 'hello world\n')) throw new Error(`brig ${name}: ${r.verdict} ${r.stderr}`);
      } finally {
        job.close();
      }
      return submitToExecNs;
    },
  };
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
const fmt = (ms: number, width = 7) => ms.toFixed(2).padStart(width);

interface Samples {
  ms: number[];
  submitToExecMs: number[];
}

/** Rounds of every way in turn; the order rotates each round so no way always follows the same one. */
async function interleaved(ways: Way[], rounds: number, pauseMs: number, record: boolean): Promise<Map<string, Samples>> {
  const samples = new Map(ways.map((w) => [w.name, { ms: [] as number[], submitToExecMs: [] as number[] }]));
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < ways.length; i++) {
      const way = ways[(round + i) % ways.length]!;
      if (pauseMs > 0) await sleep(pauseMs);
      const start = performance.now();
      const submitToExecNs = await way.run();
      const ms = performance.now() - start;
      if (!record) continue;
      const s = samples.get(way.name)!;
      s.ms.push(ms);
      if (submitToExecNs !== null) s.submitToExecMs.push(submitToExecNs / NS_PER_MS);
    }
  }
  for (const s of samples.values()) {
    s.ms.sort((a, b) => a - b);
    s.submitToExecMs.sort((a, b) => a - b);
  }
  return samples;
}

async function throughput(way: Way): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CORES }, async () => {
      while (next++ < THROUGHPUT_RUNS) await way.run();
    }),
  );
  return THROUGHPUT_RUNS / ((performance.now() - start) / 1000);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'brig-bench-'));
  chmodSync(dir, 0o711); // sandboxes must traverse to their workspace
  const helloPath = join(dir, 'hello.py');
  writeFileSync(helloPath, HELLO);
  const base = loadRuntimeConfig();
  const runtimes: Runtime[] = [];
  // Each runtime gets a state dir, a cgroup parent and a block of host uids of its own.
  const open = async (name: string, overrides: Partial<RuntimeConfig>) => {
    const runtime = await Runtime.create({
      ...base,
      stateDir: join(dir, name),
      cgroupParent: `brig-bench-${process.pid}-${name}`,
      uidBase: base.uidBase + runtimes.length * base.maxSlots * IDS_PER_SLOT,
      slots: CORES,
      ...overrides,
    });
    runtimes.push(runtime);
    return runtime;
  };
  try {
    const brig = await open('warm', { warmSlots: true });
    const cold = await open('cold', { warmSlots: false });
    const baseline = BASELINE_LAUNCHER ? await open('baseline', { warmSlots: true, launcherPath: BASELINE_LAUNCHER }) : null;
    const waysOf = (argv: string[], brigArgv: string[] | null): Way[] => [
      { name: 'bare', run: () => spawnAndWait(argv) },
      { name: 'unshare', run: () => spawnAndWait([...UNSHARE, ...argv]) },
      brigWay('brig', brig, brigArgv),
      brigWay('brig-cold', cold, brigArgv),
      ...(baseline ? [brigWay('brig-baseline', baseline, brigArgv)] : []),
    ];
    const programs: Program[] = [
      { name: '/bin/true', ways: waysOf(['/bin/true'], ['/bin/true']) },
      { name: 'python hello', ways: waysOf([PYTHON, helloPath], null) },
    ];

    console.log(
      `brig sandbox benchmark: ${RUNS} interleaved rounds per scenario after ${WARMUP} warm-up rounds, ${CORES} cores, cgroup v${brig.cgroups.version}${baseline ? `, baseline launcher ${BASELINE_LAUNCHER}` : ''}`,
    );
    console.log('program        scenario      way                  p50 ms   p95 ms   submit-to-exec p50   p95');
    const ratios: { label: string; ratio: number }[] = [];
    for (const scenario of [
      { name: 'back-to-back', pauseMs: 0 },
      { name: 'idle', pauseMs: IDLE_MS },
    ]) {
      for (const program of programs) {
        await interleaved(program.ways, WARMUP, scenario.pauseMs, false);
        const samples = await interleaved(program.ways, RUNS, scenario.pauseMs, true);
        for (const [way, s] of samples) {
          const exec = s.submitToExecMs.length
            ? `${fmt(quantile(s.submitToExecMs, 0.5), 19)}  ${fmt(quantile(s.submitToExecMs, 0.95))}`
            : '';
          console.log(
            `${program.name.padEnd(14)} ${scenario.name.padEnd(13)} ${way.padEnd(19)} ${fmt(quantile(s.ms, 0.5))}  ${fmt(quantile(s.ms, 0.95))}${exec}`,
          );
        }
        const p50 = (way: string) => quantile(samples.get(way)!.ms, 0.5);
        for (const way of ['brig', 'brig-cold', ...(baseline ? ['brig-baseline'] : [])]) {
          console.log(`${program.name}, ${scenario.name}: ${way}/unshare p50 ratio ${(p50(way) / p50('unshare')).toFixed(2)}`);
        }
        ratios.push({ label: `${program.name}, ${scenario.name}`, ratio: p50('brig') / p50('unshare') });
      }
    }

    for (const program of programs) {
      for (const way of program.ways) {
        console.log(`${program.name}: ${way.name} throughput at concurrency ${CORES}: ${(await throughput(way)).toFixed(1)} runs/s`);
      }
    }
    const worst = ratios.reduce((a, b) => (b.ratio > a.ratio ? b : a));
    console.log(`largest brig/unshare p50 ratio is ${worst.label}`);
    console.log(`brig/unshare p50 ratio: ${worst.ratio.toFixed(2)}`);
  } finally {
    for (const runtime of runtimes) await runtime.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
