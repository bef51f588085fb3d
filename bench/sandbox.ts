/**
 * npm run bench:sandbox — the per-run cost of a Brig sandbox against its floor.
 *
 * Two programs (/bin/true and a python hello world), each run three ways from
 * Node, in this one process and run:
 *   bare     spawn the program
 *   unshare  spawn it under `unshare --user --map-root-user --net --pid --mount --ipc --uts --fork`
 *   brig     a full Brig run: workspace, sandbox with cgroups, overlay rootfs,
 *            seccomp and limits, accounting, teardown
 * Prints p50/p95 of each, the brig/unshare ratio per program, Brig's runs per
 * second at concurrency = cores, and last the larger ratio:
 *   brig/unshare p50 ratio: X.XX
 * Environment: BENCH_RUNS (default 200), BENCH_WARMUP (default 20).
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Runtime } from '../runtime/runtime.ts';
import { Submission } from '../runtime/submission.ts';
import { loadRuntimeConfig } from '../services/shared/config.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 200);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 20);
const CORES = availableParallelism();
const UNSHARE = ['unshare', '--user', '--map-root-user', '--net', '--pid', '--mount', '--ipc', '--uts', '--fork'];
const HELLO = 'print("hello world")\n';

function spawnAndWait(argv: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.resume();
    child.stderr.resume();
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${argv.join(' ')} exited ${code}`))));
  });
}

async function timeRuns(fn: () => Promise<void>): Promise<number[]> {
  for (let i = 0; i < WARMUP; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b);
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'brig-bench-'));
  chmodSync(dir, 0o711); // sandboxes must traverse to their workspace
  const helloPath = join(dir, 'hello.py');
  writeFileSync(helloPath, HELLO);
  const runtime = await Runtime.create({
    ...loadRuntimeConfig(),
    stateDir: join(dir, 'state'),
    cgroupParent: `brig-bench-${process.pid}`,
    slots: CORES,
  });
  try {
    const brigTrue = async () => {
      const job = await Submission.open(runtime, { language: 'python', files: [{ name: 'main.py', content: Buffer.from(HELLO) }] });
      try {
        const r = await job.runCommand(['/bin/true'], Buffer.alloc(0));
        if (r.verdict !== 'ok') throw new Error(`brig /bin/true: ${r.verdict} ${r.stderr}`);
      } finally {
        job.close();
      }
    };
    const brigPython = async () => {
      const job = await Submission.open(runtime, { language: 'python', files: [{ name: 'main.py', content: Buffer.from(HELLO) }] });
      try {
        const r = await job.run(Buffer.alloc(0));
        if (r.verdict !== 'ok' || r.stdout !== 'hello world\n') throw new Error(`brig python: ${r.verdict} ${r.stderr}`);
      } finally {
        job.close();
      }
    };
    const programs = [
      { name: '/bin/true', argv: ['/bin/true'], brig: brigTrue },
      { name: 'python hello', argv: ['/usr/bin/python3', helloPath], brig: brigPython },
    ];

    console.log(
      `brig sandbox benchmark: ${RUNS} runs each after ${WARMUP} warm-up runs, ${CORES} cores, cgroup v${runtime.cgroups.version}`,
    );
    console.log('program        way       p50 ms   p95 ms');
    const ratios: number[] = [];
    for (const program of programs) {
      const ways = {
        bare: await timeRuns(() => spawnAndWait(program.argv)),
        unshare: await timeRuns(() => spawnAndWait([...UNSHARE, ...program.argv])),
        brig: await timeRuns(program.brig),
      };
      for (const [way, times] of Object.entries(ways)) {
        console.log(
          `${program.name.padEnd(14)} ${way.padEnd(8)} ${quantile(times, 0.5).toFixed(2).padStart(7)}  ${quantile(times, 0.95).toFixed(2).padStart(7)}`,
        );
      }
      const ratio = quantile(ways.brig, 0.5) / quantile(ways.unshare, 0.5);
      ratios.push(ratio);
      console.log(
        `${program.name}: brig/unshare p50 ratio ${ratio.toFixed(2)}, brig adds ${(quantile(ways.brig, 0.5) - quantile(ways.bare, 0.5)).toFixed(2)} ms to a bare spawn, unshare adds ${(quantile(ways.unshare, 0.5) - quantile(ways.bare, 0.5)).toFixed(2)} ms`,
      );
    }

    for (const program of programs) {
      const total = RUNS;
      let next = 0;
      const start = performance.now();
      await Promise.all(
        Array.from({ length: CORES }, async () => {
          while (next++ < total) await program.brig();
        }),
      );
      const seconds = (performance.now() - start) / 1000;
      console.log(`${program.name}: brig throughput at concurrency ${CORES}: ${(total / seconds).toFixed(1)} runs/s`);
    }
    console.log(`brig/unshare p50 ratio: ${Math.max(...ratios).toFixed(2)}`);
  } finally {
    await runtime.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
