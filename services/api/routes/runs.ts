import type { Request, Response } from 'express';
import { resolveLimits } from '../../../runtime/limits.ts';
import { JOB_NAME, type RunRecord } from '../../shared/contract.ts';
import { runQuerySchema } from '../../shared/schemas.ts';
import { type ApiContext, locals } from '../context.ts';
import { clientOf } from '../middleware/client-identity.ts';
import { parseInput } from '../middleware/validate.ts';
import { admit } from '../runs/admit.ts';
import { checkRunBudget, runWorstCase } from '../runs/budget.ts';
import { cancelRun } from '../runs/cancel.ts';
import { missingRunError, newRunId } from '../runs/ids.ts';
import { runJobOptions } from '../runs/job-options.ts';
import { findLanguage, jobDataBytes, toJobData } from '../runs/submission.ts';
import { waitForFinal } from '../runs/wait.ts';
import { pathParam, type Route, route } from './route.ts';

const ID_PARAM = { id: 'the run id from POST /v1/runs' };

/** POST, GET and DELETE of /v1/runs. */
export function runRoutes(ctx: ApiContext): Route[] {
  const { config, store } = ctx;

  async function submit(req: Request, res: Response): Promise<void> {
    const query = parseInput(runQuerySchema, req.query);
    const body = parseInput(ctx.runRequestSchema, req.body);
    let languages = await ctx.workers.languages();
    // A worker may have come up since the last read.
    if (!languages.has(body.language)) languages = await ctx.workers.languages({ refresh: true });
    const language = findLanguage(languages, body.language);
    const { requestId, log } = locals(res);
    const createdAt = Date.now();
    const id = newRunId(createdAt);
    const client = clientOf(req, res);
    const job = toJobData(body, language, { id, client, createdAt, requestId });
    // Resolved here as the worker will (the same function, the worker's published limits), to refuse what would not fit.
    const limits = resolveLimits(job.limits, language.limits, language.maxLimits);
    const worst = runWorstCase(job, language, limits, { jobBytes: jobDataBytes(job) });
    checkRunBudget(job, worst, config);
    const record: RunRecord = { id, language: language.name, status: 'queued', verdict: null, compile: null, createdAt };
    // Followed before it is queued (even before it is admitted), so that even a run finished at once is seen.
    const wait =
      query.wait === 'true' || query.wait === '1'
        ? waitForFinal({ hub: ctx.hub, store, id, timeoutMs: config.waitTimeoutMs, signal: ctx.shutdownSignal })
        : null;
    let priority: number;
    try {
      priority = await admit(ctx, {
        record,
        client,
        storeBytes: worst.storeBytes,
        createdAt,
        queueCapacity: config.queueCapacity,
        clientMaxActiveRuns: config.clientMaxActiveRuns,
        resultTtlSeconds: config.resultTtlSeconds,
      });
    } catch (error) {
      wait?.stop();
      throw error;
    }

    locals(res).runId = id;
    try {
      await ctx.queue.add(JOB_NAME, job, runJobOptions(id, config.resultTtlSeconds, priority));
    } catch (error) {
      wait?.stop();
      // Nothing of a refused run stays behind: no record, no admission.
      await store
        .discard(id)
        .catch((cleanup: unknown) =>
          log.warn({ err: cleanup, runId: id }, 'refused run not cleaned up: its admission goes stale by itself'),
        );
      throw error;
    }
    log.info(
      { runId: id, language: language.name, files: job.files.length, tests: job.tests.length, priority, wait: wait !== null },
      'run queued',
    );
    res.location(`/v1/runs/${id}`);
    if (!wait) {
      res.status(202).json({ id, status: 'queued' });
      return;
    }
    const waiting = wait;
    res.once('close', () => waiting.stop());
    const final = await waiting.result;
    if (res.destroyed) return;
    if (final) {
      if (Buffer.isBuffer(final)) res.status(200).type('json').send(final);
      else res.status(200).json(final);
      return;
    }
    const current = await store.get(id);
    res.status(202).json({ id, status: current?.status ?? 'queued' });
  }

  async function get(req: Request, res: Response): Promise<void> {
    const id = pathParam(req, 'id');
    locals(res).runId = id;
    // Sent as stored: a client reading a large record again and again must not hold the event loop.
    const record = await store.getBytes(id);
    if (!record) throw missingRunError(id, config.resultTtlSeconds);
    res.type('json').send(record);
  }

  async function cancel(req: Request, res: Response): Promise<void> {
    const id = pathParam(req, 'id');
    locals(res).runId = id;
    const outcome = await cancelRun(store, ctx.queue, id, locals(res).log);
    if (outcome.kind === 'not_found') throw missingRunError(id, config.resultTtlSeconds);
    if (outcome.kind === 'final') {
      res.status(200).json(outcome.record);
      return;
    }
    locals(res).log.info({ runId: id, status: outcome.record.status }, 'run cancel requested');
    res.status(202).json({ id, status: outcome.record.status });
  }

  return [
    route({
      method: 'post',
      path: '/v1/runs',
      auth: true,
      body: true,
      handler: submit,
      doc: {
        operationId: 'createRun',
        tags: ['runs'],
        summary: 'Queue a run',
        description:
          'Validates the submission and queues it. Nothing is queued or stored when the request is refused. ' +
          "With wait=true the answer is the final record when the run ends within the server's wait timeout.",
        requestBody: 'RunRequest',
        query: runQuerySchema,
        responses: {
          200: { description: 'wait=true and the run ended in time: its final record', schema: 'RunRecord' },
          202: {
            description: 'queued (or, with wait=true, still going when the wait timed out)',
            schema: 'RunAccepted',
            headers: { Location: "the run's URL" },
          },
          400: {
            description:
              "invalid request: request_invalid, body_invalid_json, language_unknown, limit_over_maximum (a limit, or the run's output or wall time in all, over the server maximum), file_name_invalid, file_name_duplicate, files_too_many, tests_too_many, content_invalid_base64, source_missing, source_conflict, body_invalid_encoding",
            schema: 'Error',
          },
          413: {
            description:
              'body_too_large: from Content-Length before the body is read, or at the limit (as sent or decompressed); the connection is closed',
            schema: 'Error',
          },
          415: {
            description:
              'content_type_unsupported (not application/json in UTF-8) or content_encoding_unsupported (not identity, gzip or deflate)',
            schema: 'Error',
          },
          429: {
            description: 'rate_limited, or too_many_active_runs for this key (or address)',
            schema: 'Error',
            headers: { 'Retry-After': 'seconds to wait before retrying' },
          },
          503: {
            description: 'queue_full, workers_unavailable, store_full or store_unavailable',
            schema: 'Error',
            headers: { 'Retry-After': 'seconds to wait before retrying' },
          },
        },
      },
    }),
    route({
      method: 'get',
      path: '/v1/runs/:id',
      auth: true,
      handler: get,
      doc: {
        operationId: 'getRun',
        tags: ['runs'],
        summary: "A run's record",
        params: ID_PARAM,
        responses: {
          200: { description: 'the run record', schema: 'RunRecord' },
          400: { description: 'path_invalid: the id has a malformed %XX', schema: 'Error' },
          404: { description: 'run_not_found, or run_expired when its result is past the retention time', schema: 'Error' },
        },
      },
    }),
    route({
      method: 'delete',
      path: '/v1/runs/:id',
      auth: true,
      handler: cancel,
      doc: {
        operationId: 'cancelRun',
        tags: ['runs'],
        summary: 'Cancel a run',
        description: 'A queued run is cancelled at once; a running one is aborted by its worker. A finished run stays as it was.',
        params: ID_PARAM,
        responses: {
          200: { description: 'the run had already ended: its record, unchanged', schema: 'RunRecord' },
          202: { description: 'cancelled, or cancel asked of the worker that runs it', schema: 'RunAccepted' },
          400: { description: 'path_invalid: the id has a malformed %XX', schema: 'Error' },
          404: { description: 'run_not_found or run_expired', schema: 'Error' },
        },
      },
    }),
  ];
}
