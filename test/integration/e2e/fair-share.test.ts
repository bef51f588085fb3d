/**
 * Fair shares through the whole service: real HTTP, a real Redis, a `brig
 * worker` process with real sandboxes. One client's backlog must not delay
 * another client's first run: client A queues 200 runs that each sleep, and
 * client B's single run still finishes within seconds, not after A's
 * backlog (which would take minutes).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { api, startService, type TestService } from '../../helpers/service.ts';

const A_RUNS = 200;
const A_SLEEP_S = 2;
/** B waits at most for one of A's runs to give up a slot, plus its own run: a few seconds. */
const B_WITHIN_MS = 4 * A_SLEEP_S * 1_000;

let service: TestService;
before(async () => {
  service = await startService({
    uids: 'e2e/fair-share',
    workers: 1,
    slotsPerWorker: 2,
    env: { BRIG_API_KEYS: 'client-a,client-b', BRIG_CLIENT_MAX_ACTIVE_RUNS: String(A_RUNS), BRIG_RATE_LIMIT_PER_MINUTE: '0' },
  });
});
after(async () => {
  await service?.close();
});

test("client A queues 200 runs that sleep; client B's single run still finishes within a few seconds", async () => {
  const sleeper = { language: 'python', source: `import time\ntime.sleep(${A_SLEEP_S})\n`, limits: { wallMs: (A_SLEEP_S + 3) * 1_000 } };
  const asA = { authorization: 'Bearer client-a' };
  for (let i = 0; i < A_RUNS; i++) {
    const queued = await api(service, 'POST', '/v1/runs', sleeper, asA);
    assert.equal(queued.status, 202, queued.text);
  }
  const overCap = await api(service, 'POST', '/v1/runs', sleeper, asA);
  assert.equal(overCap.status, 429, 'A is at its cap');
  assert.equal(overCap.json.error.code, 'too_many_active_runs');

  const started = Date.now();
  const b = await api(
    service,
    'POST',
    '/v1/runs?wait=true',
    { language: 'python', source: 'print("b")' },
    { authorization: 'Bearer client-b' },
  );
  const tookMs = Date.now() - started;
  assert.equal(b.status, 200, b.text);
  assert.equal(b.json.verdict, 'ok');
  assert.equal(b.json.run.stdout, 'b\n');
  assert.ok(tookMs < B_WITHIN_MS, `B's run took ${tookMs} ms behind A's backlog`);

  // B did not wait for A's backlog: nearly all of it is still queued.
  const metrics = await fetch(`${service.url}/metrics`).then((r) => r.text());
  const waiting = Number(/brig_queue_jobs\{state="prioritized"\} (\d+)/.exec(metrics)?.[1]);
  assert.ok(waiting >= A_RUNS - 10, `${waiting} of A's runs still wait`);
});
