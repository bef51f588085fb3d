/**
 * A worker in a process of its own, for the test that kills it with SIGKILL.
 * Its configuration comes as JSON in BRIG_TEST_WORKER; it prints "ready" once
 * it takes jobs, and runs until it is killed.
 */
import { createLogger } from '../../../services/shared/logger.ts';
import { createMetrics } from '../../../services/shared/metrics.ts';
import { startWorker, type WorkerOptions } from '../../../services/worker/worker.ts';

const options = JSON.parse(process.env.BRIG_TEST_WORKER!) as Omit<WorkerOptions, 'logger' | 'metrics'>;
await startWorker({
  ...options,
  logger: createLogger({ level: options.serviceConfig.logLevel, name: 'brig-crashing-worker' }),
  metrics: createMetrics({ defaultMetrics: false }),
});
process.stdout.write('ready\n');
