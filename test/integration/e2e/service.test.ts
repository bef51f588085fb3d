import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { api, startService, type TestService, waitForWorkers } from '../../helpers/service.ts';

/**
 * The whole service end to end: a real redis-server, the API over real HTTP,
 * and two `brig worker` processes with two sandbox slots each.
 */
let service: TestService;
before(async () => {
  service = await startService({ uids: 'e2e/service', workers: 2, slotsPerWorker: 2 });
});
after(async () => {
  await service?.close();
});

const FAST = { cpuMs: 1000, wallMs: 3000, memoryMb: 64 };

async function runAndWait(body: Record<string, unknown>) {
  const response = await api(service, 'POST', '/v1/runs?wait=true', body);
  assert.equal(response.status, 200, response.text);
  assert.equal(response.json.status, 'done', response.text);
  return response.json;
}

async function pollUntilFinal(id: string, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await api(service, 'GET', `/v1/runs/${id}`);
    assert.equal(response.status, 200, response.text);
    if (response.json.status === 'done' || response.json.status === 'cancelled') return response.json;
    if (Date.now() > deadline) throw new Error(`run ${id} still ${response.json.status} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

test('every native verdict comes back through HTTP', async () => {
  const cases: [string, Record<string, unknown>][] = [
    ['ok', { language: 'python', source: 'print(input()[::-1])', stdin: 'olleh' }],
    ['runtime_error', { language: 'python', source: 'raise SystemExit(4)' }],
    ['time_limit', { language: 'python', source: 'while True: pass', limits: { cpuMs: 300, wallMs: 3000 } }],
    ['memory_limit', { language: 'python', source: 'x = bytearray(200 * 1024 * 1024)', limits: { memoryMb: 64 } }],
    ['output_limit', { language: 'python', source: 'while True: print("y" * 1000)', limits: { outputBytes: 10000 } }],
    ['compile_error', { language: 'c', source: 'int main( { return 0; }' }],
  ];
  const results = await Promise.all(cases.map(([, body]) => runAndWait({ limits: FAST, ...body })));
  for (const [i, [verdict]] of cases.entries()) assert.equal(results[i].verdict, verdict, JSON.stringify(results[i]));
  assert.equal(results[0].run.stdout, 'hello\n');
  assert.equal(results[1].run.exitCode, 4);
  assert.ok(results[4].run.truncated);
  assert.match(results[5].compile.stderr, /error/);
});

test("judge mode: every test runs from one compiled artifact; wrong_answer is the first failing test's verdict", async () => {
  const source = '#include <stdio.h>\nint main(){long a,b; if(scanf("%ld %ld",&a,&b)!=2) return 1; printf("%ld\\n", a==7 ? a : a+b);}\n';
  const tests = [
    { name: 'one', stdin: '1 2', expectedOutput: '3' },
    { name: 'two', stdin: '7 1', expectedOutput: '8' },
    { name: 'three', stdin: 'x', expectedOutput: '0' },
  ];
  const record = await runAndWait({ language: 'c', source, tests, limits: FAST });
  assert.equal(record.compile.verdict, 'ok');
  assert.deepEqual(
    record.tests.map((t: { name: string; verdict: string }) => [t.name, t.verdict]),
    [
      ['one', 'ok'],
      ['two', 'wrong_answer'],
      ['three', 'runtime_error'],
    ],
  );
  assert.equal(record.verdict, 'wrong_answer');
  const passing = await runAndWait({ language: 'c', source, tests: [tests[0]], compare: 'tokens', limits: FAST });
  assert.equal(passing.verdict, 'ok');
});

test('poll and server-sent events follow a run from queued to done', async () => {
  const posted = await api(service, 'POST', '/v1/runs', {
    language: 'python',
    source: 'import time; time.sleep(0.3); print(1)',
    tests: [
      { name: 'a', stdin: '', expectedOutput: '1' },
      { name: 'b', stdin: '', expectedOutput: '1' },
    ],
  });
  assert.equal(posted.status, 202, posted.text);
  assert.equal(posted.json.status, 'queued');
  const stream = await fetch(`${service.url}/v1/runs/${posted.json.id}/events`);
  assert.equal(stream.headers.get('content-type')?.split(';')[0], 'text/event-stream');
  const text = await stream.text(); // the server ends the stream after done
  const types = [...text.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
  assert.deepEqual(
    types.filter((t) => t !== 'queued' && t !== 'started'),
    ['compiled', 'test', 'test', 'done'],
    text,
  );
  const record = await pollUntilFinal(posted.json.id);
  assert.equal(record.verdict, 'ok');
});

test("cancel: a running run's sandbox is killed, a queued run never starts; both end cancelled", async () => {
  const sleeper = { language: 'python', source: 'import time; time.sleep(60)', limits: { cpuMs: 1000, wallMs: 60000 } };
  const running = await Promise.all([1, 2, 3, 4].map(() => api(service, 'POST', '/v1/runs', sleeper)));
  // Four slots are busy now; a fifth run waits in the queue.
  const queued = await api(service, 'POST', '/v1/runs', sleeper);
  for (let i = 0; i < 100; i++) {
    const states = await Promise.all(running.map((r) => api(service, 'GET', `/v1/runs/${r.json.id}`)));
    if (states.every((s) => s.json.status === 'running')) break;
    await sleep(100);
  }
  assert.equal((await api(service, 'GET', `/v1/runs/${queued.json.id}`)).json.status, 'queued');
  const cancelQueued = await api(service, 'DELETE', `/v1/runs/${queued.json.id}`);
  assert.ok([200, 202].includes(cancelQueued.status), cancelQueued.text);
  const started = Date.now();
  await Promise.all(running.map((r) => api(service, 'DELETE', `/v1/runs/${r.json.id}`)));
  const finals = await Promise.all([...running, queued].map((r) => pollUntilFinal(r.json.id, 15_000)));
  for (const final of finals) assert.equal(final.status, 'cancelled', JSON.stringify(final));
  assert.ok(Date.now() - started < 10_000, 'cancelling running sandboxes took too long');
  assert.equal(finals[4].startedAt, undefined, 'the queued run must never have started');
});

test('GET /v1/languages lists what the live workers can run, with versions', async () => {
  const response = await api(service, 'GET', '/v1/languages');
  assert.equal(response.status, 200);
  const names = (response.json.languages ?? response.json).map((l: { name: string }) => l.name).sort();
  assert.deepEqual(names, ['bash', 'c', 'cpp', 'java', 'node', 'python']);
  assert.equal((await api(service, 'GET', '/readyz')).status, 200);
});

test('a worker killed with SIGKILL mid-run loses no run, and leaves no cgroup or run dir behind', async () => {
  const body = { language: 'python', source: 'import time; time.sleep(1.5); print("survived")', limits: { cpuMs: 1000, wallMs: 10000 } };
  const posted = await Promise.all([1, 2, 3, 4, 5, 6].map(() => api(service, 'POST', '/v1/runs', body)));
  for (const p of posted) assert.equal(p.status, 202, p.text);
  await sleep(700); // both workers hold runs now
  const victim = service.workers[0]!;
  await victim.stop('SIGKILL');
  const finals = await Promise.all(posted.map((p) => pollUntilFinal(p.json.id, 120_000)));
  for (const final of finals) {
    assert.equal(final.status, 'done', JSON.stringify(final));
    assert.equal(final.verdict, 'ok', JSON.stringify(final));
    assert.equal(final.run.stdout, 'survived\n');
  }
  // The survivor sweeps the dead worker's slots (cgroups, workspace mounts).
  const deadline = Date.now() + 15_000;
  const leftovers = () => {
    const slots = readdirSync(`/sys/fs/cgroup/memory/${service.cgroupParent}`).filter((n) => n.startsWith('slot-'));
    const mounts = readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .filter((l) => l.includes(service.stateDir));
    // Workspaces still mounted or holding anything; a live slot keeps its empty mount points for its next jobs.
    const runDirs = readdirSync(join(service.stateDir, 'runs')).flatMap((slot) => {
      const slotDir = join(service.stateDir, 'runs', slot);
      if (!existsSync(slotDir)) return [];
      return readdirSync(slotDir).filter((id) => {
        const dir = join(slotDir, id);
        try {
          return statSync(dir).dev !== statSync(slotDir).dev || readdirSync(dir).length > 0;
        } catch {
          return false; // swept between the listing and the look
        }
      });
    });
    return { slots: slots.length, mounts, runDirs };
  };
  while (Date.now() < deadline && (leftovers().slots > 2 || leftovers().mounts.length > 0 || leftovers().runDirs.length > 0))
    await sleep(250);
  const left = leftovers();
  assert.ok(left.slots <= 2, `the dead worker's slot cgroups are still there: ${JSON.stringify(left)}`);
  assert.deepEqual(left.mounts, []);
  assert.deepEqual(left.runDirs, []);
  // A replacement worker can take the freed slots.
  await service.startWorker();
  await waitForWorkers(service, 2);
});
