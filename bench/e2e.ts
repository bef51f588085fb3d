/**
 * npm run bench:e2e — what HTTP and the queue cost on top of the runtime.
 *
 * Two ways, BENCH_RUNS python hello-world runs each, BENCH_CONCURRENCY at a
 * time:
 *   direct  through the runtime in this process
 *   http    as POST /v1/runs?wait=true against `brig serve` (API + worker),
 *           driven by autocannon; loadtest/k6/hello.js is the same scenario
 *           for k6 users. Its Redis is started here as brig serve starts its
 *           private one (same redis-server, append-only file synced every
 *           second, the same maxmemory, reached over a Unix socket), but
 *           without the password and renamed commands, so that MONITOR can
 *           count what the service sends it (bench/redis-commands.ts).
 * The ways take turns in BENCH_BLOCKS blocks each (direct first in odd
 * blocks, http first in even ones), so that a drift of the machine over the
 * run (this VM's latencies move by ±30% from one minute to the next) falls on
 * both alike. The Redis commands are counted in a round of their own after
 * the measured blocks: MONITOR streams every command to this process, whose
 * CPU the measured runs would otherwise share.
 *
 * Prints throughput for both, their ratio, the p50/p95 latency of each, what
 * HTTP plus the queue add (over all runs; and the p50's, block pair by block
 * pair: its median and range), the CPU per run of each way's processes (from
 * /proc: the runtime and its sandboxes; brig serve, its sandboxes, Redis and
 * the load generator), and the Redis commands per run of the counting
 * round: top level (what clients sent; an EVALSHA is one) and in all (the
 * commands scripts run counted too), with the largest of each; the last line
 * is exactly
 *   http/direct throughput ratio: X.XX
 * Before the measured blocks, each way runs BENCH_WARMUP runs unmeasured: a
 * service runs for days, and what it costs then is what this measures. A
 * fresh brig serve is still optimizing its code for the first thousand runs
 * or so (V8 compiled ~40 functions a second on its worker threads; serve's
 * other threads took 1.7 ms per run over its first 300 runs, 0.6–0.9 from
 * its 1,500th on).
 * Environment: BENCH_RUNS (default 1000), BENCH_BLOCKS (default 10),
 * BENCH_WARMUP (default 600), BENCH_COUNT_RUNS (default 200),
 * BENCH_CONCURRENCY (default 2 × cores); brig serve logs at LOG_LEVEL and
 * BRIG_LOG_FLUSH_MS as the service reads them (default info, 100 ms), its
 * output discarded.
 */

import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { startServeProcess, stopServeProcess } from '../loadtest/serve-process.ts';
import { Runtime } from '../runtime/runtime.ts';
import { IDS_PER_SLOT } from '../runtime/slots/lease.ts';
import { runSubmission } from '../runtime/submission.ts';
import { loadRuntimeConfig, loadServiceConfig } from '../services/shared/config.ts';
import { startPrivateRedis } from '../services/shared/redis-server.ts';
import { type CpuSource, CpuTally } from './process-cpu.ts';
import { countCommands, perRun, sum } from './redis-commands.ts';

const CORES = availableParallelism();
const RUNS = Number(process.env.BENCH_RUNS ?? 1000);
const BLOCKS = Number(process.env.BENCH_BLOCKS ?? 10);
const WARMUP_RUNS = Number(process.env.BENCH_WARMUP ?? 600);
const COUNT_RUNS = Number(process.env.BENCH_COUNT_RUNS ?? 200);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 2 * CORES);
const SOURCE = 'print("hello world")\n';
const BENCH_NAME = 'bench-e2e';

/** How many of the most frequent commands are listed. */
const TOP_COMMANDS = Number(process.env.BENCH_TOP_COMMANDS ?? 8);

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

/** One block of runs: latencies in ms, and the seconds until the last answer. */
interface Block {
  seconds: number;
  latencies: number[];
  wrong: number;
}

/** direct: the runtime in this process, its own cgroup parent and uids beside brig serve's. */
async function openDirect(stateDir: string): Promise<{ block(runs: number): Promise<Block>; close(): Promise<void> }> {
  const config = loadRuntimeConfig();
  const runtime = await Runtime.create({
    ...config,
    stateDir,
    cgroupParent: `brig-${BENCH_NAME}-direct-${process.pid}`,
    uidBase: config.uidBase + config.maxSlots * IDS_PER_SLOT,
    slots: CORES,
  });
  const once = async () => {
    const start = performance.now();
    const result = await runSubmission(
      runtime,
      { language: 'python', files: [{ name: 'main.py', content: Buffer.from(SOURCE) }] },
      Buffer.alloc(0),
    );
    if (result.run?.stdout !== 'hello world\n') throw new Error(`direct run failed: ${JSON.stringify(result.run)}`);
    return performance.now() - start;
  };
  return {
    block: async (runs) => {
      const latencies: number[] = [];
      let next = 0;
      const start = performance.now();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next++ < runs) latencies.push(await once());
        }),
      );
      return { seconds: (performance.now() - start) / 1000, latencies, wrong: 0 };
    },
    close: () => runtime.close(),
  };
}

/** http: brig serve with the bench's Redis. */
async function openHttp(redisDir: string) {
  const serviceConfig = loadServiceConfig();
  const redis = await startPrivateRedis(redisDir, { appendOnly: true, maxMemory: serviceConfig.redisMaxMemory, tcp: true });
  const server = await startServeProcess({
    name: BENCH_NAME,
    uidBase: loadRuntimeConfig().uidBase,
    // Logging as this environment configures it (the service's default
    // unless LOG_LEVEL is set; BRIG_LOG_FLUSH_MS passes through), not the load
    // tests' warnings only: a run's log lines are part of what HTTP and the queue cost.
    env: { BRIG_SLOTS: String(CORES), LOG_LEVEL: serviceConfig.logLevel },
    stdio: ['ignore', 'ignore', 'inherit'],
    redisUrl: redis.socketUrl,
  }).catch(async (error: unknown) => {
    await redis.stop();
    throw error;
  });
  const body = JSON.stringify({ language: 'python', source: SOURCE });
  const request = { method: 'POST' as const, path: '/v1/runs?wait=true', headers: { 'content-type': 'application/json' }, body };
  let non2xx = 0;
  return {
    redisUrl: redis.url!,
    /** The processes of this way whose CPU is counted: brig serve and, apart, its sandboxes; Redis; and the load generator (autocannon, in this process). */
    cpuSources: {
      'brig serve': { pid: server.child.pid!, part: 'self' },
      sandboxes: { pid: server.child.pid!, part: 'children' },
      redis: { pid: redis.process.pid!, part: 'self' },
      'load generator': { pid: process.pid, part: 'self' },
    } satisfies Record<string, CpuSource>,
    get non2xx() {
      return non2xx;
    },
    block: async (runs: number): Promise<Block> => {
      let wrong = 0;
      const latencies: number[] = [];
      // Until the last answer: autocannon's own duration, and its return, come on whole seconds.
      const start = performance.now();
      let lastAnswerAt = start;
      const result = await autocannon({
        url: server.url,
        connections: CONCURRENCY,
        amount: runs,
        timeout: 60,
        requests: [request],
        setupClient: (client) => {
          client.on('body', (b: Buffer) => {
            if (!b.toString().includes('"stdout":"hello world\\n"')) wrong++;
          });
          client.on('response', (_status: number, _bytes: number, responseTimeMs: number) => {
            latencies.push(responseTimeMs);
            lastAnswerAt = performance.now();
          });
        },
      });
      non2xx += result.non2xx;
      return { seconds: (lastAnswerAt - start) / 1000, latencies, wrong };
    },
    close: async () => {
      await stopServeProcess(server);
      await redis.stop();
    },
  };
}

interface Totals {
  seconds: number;
  latencies: number[];
  wrong: number;
}

function add(totals: Totals, block: Block): void {
  totals.seconds += block.seconds;
  totals.latencies.push(...block.latencies);
  totals.wrong += block.wrong;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'brig-bench-e2e-'));
  chmodSync(dir, 0o711);
  const perBlock = Math.ceil(RUNS / BLOCKS);
  console.log(
    `brig e2e benchmark: ${perBlock * BLOCKS} python hello-world runs per way in ${BLOCKS} alternating blocks ` +
      `after ${WARMUP_RUNS} unmeasured, concurrency ${CONCURRENCY}, ${CORES} cores, ${CORES} sandbox slots per way`,
  );
  const direct = await openDirect(join(dir, 'direct'));
  try {
    const http = await openHttp(join(dir, 'redis'));
    try {
      await direct.block(WARMUP_RUNS);
      await http.block(WARMUP_RUNS);
      const d: Totals = { seconds: 0, latencies: [], wrong: 0 };
      const h: Totals = { seconds: 0, latencies: [], wrong: 0 };
      // CPU per run of each way's processes: at this concurrency the cores are
      // saturated, so what HTTP and the queue add to the latency is about
      // twice what they add in CPU per run (two runs wait for each slot).
      const directCpu = new CpuTally();
      const httpCpu = new CpuTally();
      const directSources: Record<string, CpuSource> = {
        runtime: { pid: process.pid, part: 'self' },
        sandboxes: { pid: process.pid, part: 'children' },
      };
      // The p50 each way took in each block: a pair's difference is measured a minute
      // apart at most, so the machine's drift from one minute to the next falls out of it.
      const blockP50 = { direct: [] as number[], http: [] as number[] };
      const measured = async (totals: Totals, p50s: number[], block: Block) => {
        add(totals, block);
        p50s.push(
          quantile(
            [...block.latencies].sort((a, b) => a - b),
            0.5,
          ),
        );
      };
      const runDirect = async () => measured(d, blockP50.direct, await directCpu.during(directSources, () => direct.block(perBlock)));
      const runHttp = async () => measured(h, blockP50.http, await httpCpu.during(http.cpuSources, () => http.block(perBlock)));
      for (let i = 0; i < BLOCKS; i++) {
        if (i % 2 === 0) {
          await runDirect();
          await runHttp();
        } else {
          await runHttp();
          await runDirect();
        }
      }
      const pairs = blockP50.http.map((p50, i) => p50 - blockP50.direct[i]!).sort((a, b) => a - b);
      for (const t of [d, h]) t.latencies.sort((a, b) => a - b);
      const directRate = d.latencies.length / d.seconds;
      const httpRate = h.latencies.length / h.seconds;
      const [dp50, dp95, hp50, hp95] = [
        quantile(d.latencies, 0.5),
        quantile(d.latencies, 0.95),
        quantile(h.latencies, 0.5),
        quantile(h.latencies, 0.95),
      ];
      console.log(`direct: ${directRate.toFixed(1)} runs/s, latency p50 ${dp50.toFixed(1)} ms, p95 ${dp95.toFixed(1)} ms`);
      console.log(
        `http:   ${httpRate.toFixed(1)} runs/s, latency p50 ${hp50.toFixed(1)} ms, p95 ${hp95.toFixed(1)} ms, non-2xx ${http.non2xx}, wrong output ${h.wrong}`,
      );
      console.log(`added by HTTP + queue: p50 ${(hp50 - dp50).toFixed(1)} ms, p95 ${(hp95 - dp95).toFixed(1)} ms`);
      console.log(
        `added p50 by block pair: median ${quantile(pairs, 0.5).toFixed(1)} ms, ` +
          `${pairs[0]!.toFixed(1)} to ${pairs.at(-1)!.toFixed(1)} over ${pairs.length} pairs`,
      );
      console.log(`CPU per run, direct: ${directCpu.perRun(d.latencies.length)}`);
      console.log(`CPU per run, http:   ${httpCpu.perRun(h.latencies.length)}`);

      const counting = await countCommands(http.redisUrl);
      const counted = await http.block(COUNT_RUNS);
      const { topLevel, inScripts, inAll } = await counting.stop();
      const runs = counted.latencies.length;
      console.log(
        `redis commands per run (${runs} runs counted on their own): ${(sum(topLevel) / runs).toFixed(1)} top level (what clients sent, an EVALSHA counted once), ` +
          `${(sum(inAll) / runs).toFixed(1)} in all (INFO commandstats, with the ${(sum(inScripts) / runs).toFixed(1)} that scripts ran)`,
      );
      console.log(`  top level: ${perRun(topLevel, runs, TOP_COMMANDS)}`);
      console.log(`  in all:    ${perRun(inAll, runs, TOP_COMMANDS)}`);
      if (http.non2xx > 0 || h.wrong + counted.wrong > 0)
        console.log('warning: some HTTP runs failed; the throughput ratio overstates the service');
      console.log(`http/direct throughput ratio: ${(httpRate / directRate).toFixed(2)}`);
    } finally {
      await http.close();
    }
  } finally {
    await direct.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
