import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RunFollower } from '../../../../services/api/runs/follower.ts';
import type { RunRecord, TestView } from '../../../../services/shared/contract.ts';

const id = 'run1';
const base: RunRecord = { id, language: 'python', status: 'queued', verdict: null, compile: null, createdAt: 1 };
const testView = (name: string): TestView => ({ name, verdict: 'ok', stdout: '', stderr: '', exitCode: 0, signal: null, cpuMs: 1, wallMs: 1, memoryKb: 1, truncated: false });
const types = (events: { type: string }[]) => events.map((e) => e.type);

test('a queued run replays queued, then takes live events once each', () => {
  const f = new RunFollower(id);
  assert.deepEqual(types(f.replay(base, 'w')), ['queued']);
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

test('a running run replays its steps so far, and live duplicates of them are dropped', () => {
  const f = new RunFollower(id);
  const running: RunRecord = { ...base, status: 'running', startedAt: 2, compile: { ...testView('c'), verdict: 'ok' }, tests: [testView('a')] };
  assert.deepEqual(types(f.replay(running, 'w')), ['queued', 'started', 'compiled', 'test']);
  assert.equal(f.accept({ type: 'started', id, workerId: 'w' }), null);
  assert.equal(f.accept({ type: 'test', id, index: 0, test: testView('a') }), null);
  assert.equal(f.accept({ type: 'test', id, index: 1, test: testView('b') })?.type, 'test');
});

test('a final run replays only its end', () => {
  assert.deepEqual(types(new RunFollower(id).replay({ ...base, status: 'done', verdict: 'ok' }, 'w')), ['done']);
  const cancelled = new RunFollower(id);
  assert.deepEqual(types(cancelled.replay({ ...base, status: 'cancelled' }, 'w')), ['cancelled']);
  assert.ok(cancelled.finished);
});

test('a run that goes back to the queue is told as queued again, and its steps may repeat', () => {
  const f = new RunFollower(id);
  f.replay(base, 'w');
  assert.equal(f.accept({ type: 'requeued', id }), null, 'still queued: nothing new to say');
  f.accept({ type: 'started', id, workerId: 'w1' });
  f.accept({ type: 'test', id, index: 0, test: testView('a') });
  assert.equal(f.accept({ type: 'requeued', id })?.type, 'queued');
  assert.equal(f.accept({ type: 'started', id, workerId: 'w2' })?.type, 'started');
  assert.equal(f.accept({ type: 'test', id, index: 0, test: testView('a') })?.type, 'test');
});
