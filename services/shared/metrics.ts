import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Every Prometheus metric Brig exports, in base units (seconds, bytes). The
 * API and each worker build their own registry with createMetrics(); a
 * process that runs both (brig serve) builds one and shares it.
 */
export function createMetrics(opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'brig_' });
  const registers = [registry];
  return {
    registry,
    httpRequests: new Counter({
      name: 'brig_http_requests_total',
      help: 'HTTP requests by route, method and status',
      labelNames: ['route', 'method', 'status'],
      registers,
    }),
    httpDuration: new Histogram({
      name: 'brig_http_request_duration_seconds',
      help: 'HTTP request duration by route and method',
      labelNames: ['route', 'method'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    queueJobs: new Gauge({ name: 'brig_queue_jobs', help: 'Jobs in the run queue by state', labelNames: ['state'], registers }),
    runs: new Counter({
      name: 'brig_runs_total',
      help: 'Finished runs by language and verdict',
      labelNames: ['language', 'verdict'],
      registers,
    }),
    phaseDuration: new Histogram({
      name: 'brig_phase_duration_seconds',
      help: 'Time per phase of a run: queued, setup, compile, run, cleanup',
      labelNames: ['phase'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    activeSandboxes: new Gauge({ name: 'brig_active_sandboxes', help: 'Sandboxes running now in this process', registers }),
    submitToExec: new Histogram({
      name: 'brig_submit_to_exec_seconds',
      help: "From a step's call into the runtime to its program's execve, by whether its sandbox was prepared ahead (warm)",
      labelNames: ['warm'],
      buckets: [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers,
    }),
    runCpuSeconds: new Histogram({
      name: 'brig_run_cpu_seconds',
      help: 'CPU time per run step',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers,
    }),
    runMemoryBytes: new Histogram({
      name: 'brig_run_memory_peak_bytes',
      help: 'Peak memory per run step',
      buckets: [1, 4, 16, 32, 64, 128, 256, 512, 1024, 2048].map((mb) => mb * 1024 * 1024),
      registers,
    }),
    workersLive: new Gauge({ name: 'brig_workers_live', help: 'Workers whose heartbeat is fresh', registers }),
    sandboxErrors: new Counter({
      name: 'brig_sandbox_errors_total',
      help: "Sandbox faults: attempts Brig failed on its side, by the runtime's error code (a retried attempt counts too)",
      labelNames: ['code'],
      registers,
    }),
    jobsRefused: new Counter({
      name: 'brig_jobs_refused_total',
      help: 'Jobs a worker refused to run (their record says internal_error with this code), never a sandbox fault',
      labelNames: ['code'],
      registers,
    }),
    callbacks: new Counter({
      name: 'brig_callbacks_total',
      labelNames: ['outcome'],
      registers,
      help: 'Callback delivery attempts by outcome: delivered (2xx), retried (failed, tried again later), dropped (refused address, refused by the receiver, record gone, or the last attempt failed)',
    }),
    callbackDuration: new Histogram({
      name: 'brig_callback_duration_seconds',
      help: 'One callback delivery attempt, from the DNS lookup to the response status, by outcome',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
