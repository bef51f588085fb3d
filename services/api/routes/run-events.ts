import type { Request, Response } from 'express';
import type { RunEvent } from '../../shared/contract.ts';
import { doneEventHead, type FollowedRecord, isFinal } from '../../shared/run-store.ts';
import { type ApiContext, locals } from '../context.ts';
import { type FollowedEvent, RunEventHub, type RunSignal } from '../runs/event-hub.ts';
import { RunFollower } from '../runs/follower.ts';
import { missingRunError } from '../runs/ids.ts';
import { RECORD_RECHECK_MS } from '../runs/wait.ts';
import { pathParam, type Route, route } from './route.ts';

export function formatEvent(event: RunEvent): string {
  return `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/** An event on the stream; a 'done' with its record as stored has the bytes spliced in as they are. */
function writeEvent(res: Response, event: FollowedEvent): void {
  if (!('stored' in event)) {
    res.write(formatEvent(event));
    return;
  }
  res.write(`event: done\ndata: ${doneEventHead(event.id)}`);
  res.write(event.stored);
  res.write('}\n\n');
}

/**
 * GET /v1/runs/:id/events: Server-Sent Events. The stream follows the run
 * from before the record is read (events that race the read are kept, and
 * the follower drops what the replay already told), replays the record's
 * state (a running record holds its progress so far), then sends live events
 * until done or cancelled, and ends. The record is read again every
 * RECORD_RECHECK_MS, which also keeps idle proxies from closing the stream.
 */
export function runEventRoutes(ctx: ApiContext): Route[] {
  async function stream(req: Request, res: Response): Promise<void> {
    const id = pathParam(req, 'id');
    locals(res).runId = id;
    const { log } = locals(res);
    const follower = new RunFollower(id);
    let state: 'starting' | 'live' | 'ended' = 'starting';
    const early: RunSignal[] = [];
    const unsubscribe = ctx.hub.subscribe(id, (signal) => {
      if (state === 'starting') early.push(signal);
      else if (state === 'live') send(signal);
    });

    // A finished run's stream is its done event alone, with the record as stored: a client
    // opening it again and again must not have the outputs parsed and written anew each time.
    let followed: FollowedRecord | null;
    try {
      followed = await ctx.store.getFollowed(id);
      if (!followed) throw missingRunError(id, ctx.config.resultTtlSeconds);
    } catch (error) {
      unsubscribe();
      throw error;
    }

    res
      .status(200)
      .set({ 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no' });
    res.flushHeaders();

    let recheck: NodeJS.Timeout | undefined;
    const end = () => {
      if (state === 'ended') return;
      state = 'ended';
      unsubscribe();
      clearInterval(recheck);
      ctx.shutdownSignal.removeEventListener('abort', end);
      res.end();
    };
    const send = (signal: RunSignal) => {
      const event = follower.accept(signal);
      if (event) writeEvent(res, event);
      if (follower.finished) end();
    };
    res.once('close', end);
    ctx.shutdownSignal.addEventListener('abort', end, { once: true });
    if (ctx.shutdownSignal.aborted) return end();

    if ('done' in followed) {
      writeEvent(res, { type: 'done', id, stored: followed.done });
      return end();
    }
    for (const event of follower.replay(followed.record)) writeEvent(res, event);
    if (follower.finished) return end();
    state = 'live';
    // What raced the read; the follower drops repeats.
    for (const signal of early.splice(0)) if (state === 'live') send(signal);

    recheck = setInterval(() => {
      ctx.store.get(id).then(
        (current) => {
          if (state !== 'live') return;
          if (!current) return end(); // expired while followed
          const final = isFinal(current) ? RunEventHub.finalEvent(current) : null;
          if (final) send(final);
          else res.write(': keep-alive\n\n');
        },
        (error: unknown) => log.warn({ err: error, runId: id }, 'run record not rechecked'),
      );
    }, RECORD_RECHECK_MS);
  }

  return [
    route({
      method: 'get',
      path: '/v1/runs/:id/events',
      auth: true,
      handler: stream,
      doc: {
        operationId: 'followRun',
        tags: ['runs'],
        summary: 'Follow a run as Server-Sent Events',
        description:
          'Each event is `event: <type>` and `data: <RunEvent JSON>`: queued, started, compiled, test (one per test), ' +
          'then done or cancelled, after which the stream ends. A client that connects late gets the current state first ' +
          '(a finished run gets done at once). queued may come again if the run goes back to the queue.',
        params: { id: 'the run id from POST /v1/runs' },
        responses: {
          200: { description: 'the event stream; each data line is a RunEvent', schema: 'RunEvent', contentType: 'text/event-stream' },
          400: { description: 'path_invalid: the id has a malformed %XX', schema: 'Error' },
          404: { description: 'run_not_found or run_expired', schema: 'Error' },
        },
      },
    }),
  ];
}
