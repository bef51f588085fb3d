import type { Queue } from 'bullmq';
import type { Response } from 'express';
import type { ServiceConfig } from '../shared/config.ts';
import type { RunJobData, RunOutcome } from '../shared/contract.ts';
import type { Logger } from '../shared/logger.ts';
import type { Metrics } from '../shared/metrics.ts';
import type { Redis } from '../shared/redis.ts';
import type { RunStore } from '../shared/run-store.ts';
import type { runRequestSchema } from '../shared/schemas.ts';
import type { RunEventHub, RunEventSources } from './runs/event-hub.ts';
import type { StoreRoom } from './runs/store-room.ts';
import type { LiveWorkers } from './workers/live-workers.ts';

/** What createApp needs; the caller owns every connection and closes it. */
export interface ApiDeps {
  config: ServiceConfig;
  /** Commands (records, rate limit, heartbeats, cancel). */
  redis: Redis;
  queue: Queue<RunJobData, RunOutcome>;
  /** Where this process hears of runs (a subscribed connection, BullMQ's failures); the app adds its listeners. */
  runEvents: RunEventSources;
  metrics: Metrics;
  logger: Logger;
  /** Aborted when the server shuts down: event streams and waits end at once, and connections are not kept alive. */
  shutdownSignal?: AbortSignal;
}

/** The deps plus what the app builds on them, handed to every route. */
export interface ApiContext extends ApiDeps {
  store: RunStore;
  room: StoreRoom;
  hub: RunEventHub;
  workers: LiveWorkers;
  shutdownSignal: AbortSignal;
  /** The request validator, built once from the config (max files, max tests); the document shows the same one. */
  runRequestSchema: ReturnType<typeof runRequestSchema>;
}

/** Per-request values, in res.locals. */
export interface RequestLocals {
  requestId: string;
  log: Logger;
  /** Set once the request names a run, for the access log. */
  runId?: string;
  /** Set once a valid API key came with the request: a prefix of its SHA-256, never the key. */
  apiKeyDigest?: string;
}

export function locals(res: Response): RequestLocals {
  return res.locals as RequestLocals;
}
