import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RunFollower } from '../../../../services/api/runs/follower.ts';
import type { RunRecord, TestSummary } from '../../../../services/shared/contract.ts';

const id = 'run1';
const base: RunRecord = { id, language: 'python', status: 'queued', verdict: null, compile: null, createdAt: 1 };
const testView = (name: string): TestSummary => ({
  name,
  verdict: 'ok',
  exitCode: 0,
  signal: null,
  cpuMs: 1,
  wallMs: 1,
  memoryKb: 1,
  maxRssKb: 1,
  truncated: false,
});
const types = (events: { type: string }[]) => events.map((e) => e.type);

test('a queued run replays queued, then takes live events once each', () => {
  const f = new RunFollower(id);
  assert.deepEqual(types(f.replay(base)), ['queued']);
  const live = [
    { type: 'started', id, workerId: 'w' },
    { type: 'started', id, workerId: 'w' },
    { type: 'compiled', id, compile: null },
    { type: 'test', id, index: 0, test: testView('a') },
    { type: 'test', id, index: 0, test: testView('a') },
    { type: 'test', id, index: 1, test: testView('b') },
    { type: 'done', id, record: { ...base, status: 'done', verdict: 'ok' } },
    { type: 'done', id, record: { ...base, status: 'done', verdict: 'ok' } },
  ] as const;
  const sent = live.map((e) => f.accept(e)).filter((e) => e !== null);
  assert.deepEqual(types(sent), ['started', 'compiled', 'test', 'test', 'done']);
  assert.ok(f.finished);
  assert.equal(f.accept({ type: 'cancelled', id }), null, 'nothing after the end');
});

test("a running run replays its steps so far from the record's progress, and live duplicates of them are dropped", () => {
  const f = new RunFollower(id);
  const running: RunRecord = {
    ...base,
    status: 'running',
    startedAt: 2,
    progress: { workerId: 'w', compile: { ...testView('c'), verdict: 'ok' }, tests: [testView('a')] },
  };
  const replayed = f.replay(running);
  assert.deepEqual(types(replayed), ['queued', 'started', 'compiled', 'test']);
  assert.deepEqual(replayed[1], { type: 'started', id, workerId: 'w' });
  assert.equal(f.accept({ type: 'started', id, workerId: 'w' }), null);
  assert.equal(f.accept({ type: 'test', id, index: 0, test: testView('a') }), null);
  assert.equal(f.accept({ type: 'test', id, index: 1, test: testView('b') })?.type, 'test');
});

test('a final run replays only its end', () => {
  assert.deepEqual(types(new RunFollower(id).replay({ ...base, status: 'done', verdict: 'ok' })), ['done']);
  const cancelled = new RunFollower(id);
  assert.deepEqual(types(cancelled.replay({ ...base, status: 'cancelled' })), ['cancelled']);
  assert.ok(cancelled.finished);
});

test('a run that goes back to the queue is told as queued again, and its steps may repeat', () => {
  const f = new RunFollower(id);
  f.replay(base);
  assert.equal(f.accept({ type: 'requeued', id }), null, 'still queued: nothing new to say');
  f.accept({ type: 'started', id, workerId: 'w1' });
  f.accept({ type: 'test', id, index: 0, test: testView('a') });
  assert.equal(f.accept({ type: 'requeued', id })?.type, 'queued');
  assert.equal(f.accept({ type: 'started', id, workerId: 'w2' })?.type, 'started');
  assert.equal(f.accept({ type: 'test', id, index: 0, test: testView('a') })?.type, 'test');
});

test('a running run that has not compiled yet replays no compiled event; one without a compile step replays compiled null', () => {
  const started: RunRecord = { ...base, status: 'running', progress: { workerId: 'w', tests: [] } };
  assert.deepEqual(types(new RunFollower(id).replay(started)), ['queued', 'started']);
  const interpreted = new RunFollower(id).replay({ ...started, progress: { workerId: 'w', compile: null, tests: [] } });
  assert.deepEqual(interpreted.at(-1), { type: 'compiled', id, compile: null });
});
