/**
 * npm run bench:e2e — what HTTP and the queue cost on top of the runtime.
 *
 * In one run:
 *   direct  BENCH_RUNS python hello-world runs through the runtime in this
 *           process, BENCH_CONCURRENCY at a time
 *   http    the same runs as POST /v1/runs?wait=true against `brig serve`
 *           (API + worker), driven by autocannon with the same concurrency;
 *           loadtest/k6/hello.js is the same scenario for k6 users. Its Redis
 *           is started here as brig serve starts its private one (same
 *           redis-server, append-only file synced every second, the same
 *           maxmemory, reached over a Unix socket), but without the password
 *           and renamed commands, so that MONITOR can count what the service
 *           sends it (bench/redis-commands.ts).
 * Prints throughput for both, their ratio, the p50/p95 latency of each, what
 * HTTP plus the queue add, and the Redis commands per run of the measured
 * HTTP runs: top level (what clients sent; an EVALSHA is one) and in all
 * (the commands scripts run counted too), with the largest of each; the
 * last line is exactly
 *   http/direct throughput ratio: X.XX
 * Environment: BENCH_RUNS (default 500), BENCH_CONCURRENCY (default 2 × cores).
 */

import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { startServeProcess, stopServeProcess } from '../loadtest/serve-process.ts';
import { Runtime } from '../runtime/runtime.ts';
import { runSubmission } from '../runtime/submission.ts';
import { loadRuntimeConfig, loadServiceConfig } from '../services/shared/config.ts';
import { startPrivateRedis } from '../services/shared/redis-server.ts';
import { type CommandCounts, countCommands, perRun, sum } from './redis-commands.ts';

const CORES = availableParallelism();
const RUNS = Number(process.env.BENCH_RUNS ?? 500);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 2 * CORES);
const SOURCE = 'print("hello world")\n';
/** Both halves run under one cgroup parent name; one after the other, never at once. */
const BENCH_NAME = 'bench-e2e';

/** How many of the most frequent commands are listed. */
const TOP_COMMANDS = Number(process.env.BENCH_TOP_COMMANDS ?? 8);

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

async function direct(stateDir: string): Promise<{ seconds: number; latencies: number[] }> {
  const runtime = await Runtime.create({
    ...loadRuntimeConfig(),
    stateDir,
    cgroupParent: `brig-${BENCH_NAME}-${process.pid}`,
    slots: CORES,
  });
  try {
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
    for (let i = 0; i < CONCURRENCY; i++) await once(); // warm-up
    const latencies: number[] = [];
    let next = 0;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next++ < RUNS) latencies.push(await once());
      }),
    );
    return { seconds: (performance.now() - start) / 1000, latencies: latencies.sort((a, b) => a - b) };
  } finally {
    await runtime.close();
  }
}

interface HttpResult {
  seconds: number;
  p50: number;
  p95: number;
  non2xx: number;
  wrong: number;
  commands: CommandCounts;
}

async function http(redisDir: string): Promise<HttpResult> {
  const redis = await startPrivateRedis(redisDir, { appendOnly: true, maxMemory: loadServiceConfig().redisMaxMemory, tcp: true });
  // The uids the direct half used (BRIG_UID_BASE or the default), so that both halves run alike.
  const server = await startServeProcess({
    name: BENCH_NAME,
    uidBase: loadRuntimeConfig().uidBase,
    env: { BRIG_SLOTS: String(CORES) },
    stdio: ['ignore', 'ignore', 'inherit'],
    redisUrl: redis.socketUrl,
  }).catch(async (error: unknown) => {
    await redis.stop();
    throw error;
  });
  try {
    const { url } = server;
    const body = JSON.stringify({ language: 'python', source: SOURCE });
    const request = { method: 'POST' as const, path: '/v1/runs?wait=true', headers: { 'content-type': 'application/json' }, body };
    await autocannon({ url, connections: CONCURRENCY, amount: CONCURRENCY, requests: [request] }); // warm-up
    let wrong = 0;
    const latencies: number[] = [];
    const counting = await countCommands(redis.url!);
    // Until the last answer: autocannon's own duration, and its return, come on whole seconds (±15% on a run of seven).
    const start = performance.now();
    let lastAnswerAt = start;
    const result = await autocannon({
      url,
      connections: CONCURRENCY,
      amount: RUNS,
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
    const seconds = (lastAnswerAt - start) / 1000;
    const commands = await counting.stop();
    latencies.sort((a, b) => a - b);
    return {
      seconds,
      p50: quantile(latencies, 0.5),
      p95: quantile(latencies, 0.95),
      non2xx: result.non2xx,
      wrong,
      commands,
    };
  } finally {
    await stopServeProcess(server);
    await redis.stop();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'brig-bench-e2e-'));
  chmodSync(dir, 0o711);
  try {
    console.log(
      `brig e2e benchmark: ${RUNS} python hello-world runs at concurrency ${CONCURRENCY}, ${CORES} cores, ${CORES} sandbox slots`,
    );
    const d = await direct(join(dir, 'direct'));
    const directRate = RUNS / d.seconds;
    console.log(
      `direct: ${directRate.toFixed(1)} runs/s, latency p50 ${quantile(d.latencies, 0.5).toFixed(1)} ms, p95 ${quantile(d.latencies, 0.95).toFixed(1)} ms`,
    );
    const h = await http(join(dir, 'redis'));
    const httpRate = RUNS / h.seconds;
    console.log(
      `http:   ${httpRate.toFixed(1)} runs/s, latency p50 ${h.p50.toFixed(1)} ms, p95 ${h.p95.toFixed(1)} ms, non-2xx ${h.non2xx}, wrong output ${h.wrong}`,
    );
    console.log(
      `added by HTTP + queue: p50 ${(h.p50 - quantile(d.latencies, 0.5)).toFixed(1)} ms, p95 ${(h.p95 - quantile(d.latencies, 0.95)).toFixed(1)} ms`,
    );
    const { topLevel, inScripts, inAll } = h.commands;
    console.log(
      `redis commands per run: ${(sum(topLevel) / RUNS).toFixed(1)} top level (what clients sent, an EVALSHA counted once), ` +
        `${(sum(inAll) / RUNS).toFixed(1)} in all (INFO commandstats, with the ${(sum(inScripts) / RUNS).toFixed(1)} that scripts ran)`,
    );
    console.log(`  top level: ${perRun(topLevel, RUNS, TOP_COMMANDS)}`);
    console.log(`  in all:    ${perRun(inAll, RUNS, TOP_COMMANDS)}`);
    if (h.non2xx > 0 || h.wrong > 0) console.log('warning: some HTTP runs failed; the throughput ratio overstates the service');
    console.log(`http/direct throughput ratio: ${(httpRate / directRate).toFixed(2)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
